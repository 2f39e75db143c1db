//! Command line: argument definitions and the glue from arguments to the pipeline.
//! Errors become text and exit codes here and in `main`, nowhere else.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use std::sync::Arc;

use tlstap::capture::{FileSource, LiveOptions, LiveSource, PacketSource};
use tlstap::inventory::{print_table, Inventory, InventoryLimits, InventorySink};
use tlstap::output::{open_sinks, OutputOptions, RecordWriter, SinkOptions};
use tlstap::pipeline::{self, PipelineConfig};
use tlstap::pipeline::{keylog, Controls, Overload};
use tlstap::policy::{drift, Networks, Policy, Severity};

#[derive(Debug, Parser)]
#[command(
    name = "tlstap",
    version,
    about = "Passive TLS handshake analyzer: one ECS-aligned NDJSON record per TLS session",
    long_about = "tlstap watches TCP traffic without touching it, reassembles each connection's \
TLS handshake (ClientHello, ServerHello, certificates, alerts) and writes one NDJSON record \
per session with ECS field names (source.*, destination.*, network.*, tls.*) and tlstap.* extras.\n\n\
TLS is recognised by content on any port. Records are written in packet order; the same \
input gives the same records for any number of workers.",
    after_help = "Examples:\n  tlstap read capture.pcap\n  tlstap read -f 'tcp port 443' -w 4 -o sessions.ndjson a.pcapng b.pcap\n  tcpdump -w - -i eth0 | tlstap read -"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyze pcap/pcapng files (several are read as one capture; '-' is stdin).
    Read(ReadArgs),
    /// Capture from an interface (a SPAN or tap port) until SIGINT/SIGTERM.
    Live(LiveArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the inventory that `read`/`live --inventory PATH` built: per
    /// service, versions and ciphers, certificates, client TLS stacks, findings.
    /// `inventory ingest` fills one from many sensors' records.
    Inventory(InventoryArgs),
    /// Write the audit report from an inventory: one self-contained file
    /// (summary, TLS 1.2-or-older paths and their exceptions, certificate
    /// expiry timeline, client stacks, clients that accepted invalid
    /// certificates, drift, findings by severity).
    Report(ReportArgs),
    /// Print a shell completion script to stdout, e.g.
    /// `tlstap completions bash > ~/.local/share/bash-completion/completions/tlstap`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page tlstap(1) (roff) to stdout, or with `--dir DIR`
    /// write it and one page per subcommand (tlstap-read(1), …) into DIR:
    /// `tlstap man --dir man/`.
    #[command(hide = true)]
    Man {
        /// Write every page (tlstap.1, tlstap-read.1, …) into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "tlstap", &mut std::io::stdout());
    Ok(0)
}

/// The man pages: `tlstap.1` for the top-level command and one page per
/// subcommand, nested ones included (`tlstap-read.1`, `tlstap-policy-check.1`,
/// …), as (file name, roff). Each page's SUBCOMMANDS section names the pages
/// of its subcommands, so all of them are generated and shipped together
/// (`man/` in the repository); each subcommand page ends with SEE ALSO for the
/// pages above it. The hidden `man` command and clap's `help` have no page.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    use clap::CommandFactory;
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let source = format!("tlstap {}", command.get_version().unwrap_or_default());
    let mut pages = Vec::new();
    add_man_pages(&command, &[], &source, &mut pages)?;
    Ok(pages)
}

fn add_man_pages(
    command: &clap::Command,
    parents: &[String],
    source: &str,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> Result<()> {
    use std::io::Write;
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    let mut page = Vec::new();
    // Every page carries the program's version: subcommands have none of their own.
    clap_mangen::Man::new(command.clone())
        .source(source)
        .render(&mut page)?;
    if !parents.is_empty() {
        let see_also: Vec<String> = parents
            .iter()
            .rev()
            .map(|parent| format!("{}(1)", parent.replace('-', "\\-")))
            .collect();
        writeln!(page, ".SH \"SEE ALSO\"")?;
        writeln!(page, "{}", see_also.join(", "))?;
    }
    pages.push((format!("{name}.1"), ascii_roff(&page)));
    let mut path = parents.to_vec();
    path.push(name);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        add_man_pages(sub, &path, source, pages)?;
    }
    Ok(())
}

/// ASCII only: groff reads Latin-1 unless preconv runs first, so every other
/// character becomes a `\[uXXXX]` escape, which groff and mandoc both render.
fn ascii_roff(page: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(page.len());
    for c in String::from_utf8_lossy(page).chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out.into_bytes()
}

/// `tlstap man`: tlstap(1) on stdout; `tlstap man --dir DIR`: every page
/// written into DIR (created if missing).
pub fn man(dir: Option<&std::path::Path>) -> Result<i32> {
    use std::io::Write;
    let pages = man_pages()?;
    match dir {
        None => {
            let (_, page) = pages.first().context("no man page generated")?;
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(page).and_then(|()| stdout.flush()) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(error) => return Err(error).context("writing the man page"),
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: creating the directory", dir.display()))?;
            for (name, page) in &pages {
                let path = dir.join(name);
                std::fs::write(&path, page)
                    .with_context(|| format!("{}: writing the man page", path.display()))?;
            }
        }
    }
    Ok(0)
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct InventoryArgs {
    #[command(subcommand)]
    pub command: Option<InventoryCommand>,
    #[arg(value_name = "INVENTORY.sqlite", required = true)]
    pub path: Option<PathBuf>,
    /// JSON for machines instead of the table for people.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Fold records into an inventory: from a Kafka topic that sensors write
    /// to (kafka://BROKER[,BROKER…]/TOPIC; a consumer group, each record
    /// applied once across restarts) or from NDJSON files ('-' is stdin).
    /// Lines that are not tlstap records are named on stderr and skipped.
    Ingest(IngestArgs),
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// kafka://BROKER[,BROKER…]/TOPIC, or NDJSON record files.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// The inventory (SQLite, created if missing).
    #[arg(long, value_name = "PATH", required = true)]
    pub inventory: PathBuf,
    /// Kafka consumer group.
    #[arg(long, value_name = "ID", default_value = "tlstap-inventory")]
    pub group: String,
    /// librdkafka property for the consumer, e.g. security.protocol=SSL; repeatable.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", value_parser = parse_kafka_property)]
    pub kafka_property: Vec<(String, String)>,
    /// Kafka: stop after this many seconds without a record [default: run
    /// until SIGINT/SIGTERM].
    #[arg(long, value_name = "SECONDS")]
    pub stop_when_idle: Option<u64>,
    /// Kafka: stop after applying this many records.
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,
    /// Policy whose drift settings (expiry warning window, service cap) and
    /// exceptions the estate-wide drift judgement uses; defaults otherwise.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// No summary on stderr at the end.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(value_name = "INVENTORY.sqlite")]
    pub path: PathBuf,
    /// Where the report goes ('-' is stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
    /// html (inline CSS and SVG, no external requests), md or json.
    #[arg(long, value_name = "FORMAT", default_value = "html", value_parser = ["html", "md", "markdown", "json"])]
    pub format: String,
    /// List drift events from this date on (YYYY-MM-DD or RFC 3339); default: all.
    #[arg(long, value_name = "DATE")]
    pub drift_since: Option<String>,
    /// Certificates and exceptions expiring within this many days are flagged.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub expiry_warning_days: i64,
    /// The report's title.
    #[arg(long, value_name = "TEXT", default_value = "TLS estate evidence")]
    pub title: String,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file (errors name the line) and list exceptions that
    /// have expired or expire within 30 days.
    Check {
        #[arg(value_name = "POLICY.toml")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Capture files, pcap or pcapng; '-' reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// BPF capture filter in libpcap syntax, e.g. 'tcp port 443 or tcp port 8443'.
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,

    /// Parser worker threads [default: available cores].
    #[arg(short = 'w', long = "workers", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    #[command(flatten)]
    pub outputs: OutputArgs,

    #[command(flatten)]
    pub analysis: AnalysisArgs,

    /// No summary on stderr at the end.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Never draw a progress bar (it is drawn only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Where records go; repeatable: '-' (stdout), PATH (created or truncated),
    /// file:PATH (appended, one write per record, reopened on SIGHUP),
    /// tcp://HOST:PORT or unix:PATH (newline-delimited JSON, reconnecting,
    /// bounded queue that drops the oldest and counts it).
    #[arg(short = 'o', long = "output", value_name = "DEST", default_values_t = ["-".to_string()])]
    pub output: Vec<String>,

    /// fsync file:PATH outputs after this many records (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fsync_every: u64,

    /// Records a tcp://, unix: or kafka:// output holds while its collector
    /// or broker is away.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub output_queue: usize,

    /// Bytes that queue may hold (e.g. 64M, 1G): records grow with their
    /// certificate chains, so a count alone does not bound the memory.
    /// Whichever bound is reached first drops records, counted.
    #[arg(long, value_name = "BYTES", default_value = "128M", value_parser = tlstap::memory::parse_bytes)]
    pub output_queue_bytes: usize,

    /// librdkafka property for kafka:// outputs, e.g. security.protocol=SSL,
    /// compression.type=zstd; repeatable. tlstap sets enable.idempotence=true
    /// and acks=all unless told otherwise.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", value_parser = parse_kafka_property)]
    pub kafka_property: Vec<(String, String)>,

    /// This sensor's name in every record (ECS observer.name) [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
}

impl OutputArgs {
    pub fn writer(&self) -> Result<RecordWriter> {
        let hostname = host_name();
        let name = self.sensor_name.clone().unwrap_or_else(|| hostname.clone());
        let options = SinkOptions {
            fsync_every: self.fsync_every,
            queue_lines: self.output_queue.max(1),
            queue_bytes: self.output_queue_bytes.max(1),
            kafka_properties: self.kafka_property.clone(),
            client_id: format!("tlstap-{name}"),
        };
        let observer = tlstap::output::ecs::Observer {
            name: &name,
            hostname: &hostname,
        };
        Ok(RecordWriter::new(open_sinks(&self.output, &options)?).with_observer(&observer)?)
    }
}

/// The host name (ECS observer.hostname); "unknown" if the system has none.
fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// `--kafka-property KEY=VALUE`: checked by clap (exit 2 on a bad one).
fn parse_kafka_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on (e.g. the SPAN/mirror port).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: String,

    /// BPF capture filter in libpcap syntax.
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,

    /// Bytes captured per packet.
    #[arg(long, value_name = "N", default_value_t = 262_144)]
    pub snaplen: i32,

    /// Kernel capture buffer in MiB.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub buffer_mb: i32,

    /// Do not put the interface into promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,

    /// Parser worker threads [default: available cores].
    #[arg(short = 'w', long = "workers", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// When workers fall behind: drop in user space and count it (never hold
    /// the kernel ring), or block the capture thread.
    #[arg(long, value_name = "MODE", default_value = "drop", value_parser = ["drop", "block"])]
    pub overload: String,

    /// Seconds between tlstap.stats records (and status lines on a terminal).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub stats_interval: u64,

    /// After opening the interface, switch to this user (and its group,
    /// supplementary groups cleared). Needs root or CAP_SETUID/CAP_SETGID.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    #[command(flatten)]
    pub outputs: OutputArgs,

    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(Debug, Args)]
pub struct AnalysisArgs {
    /// Policy file (TOML): internal networks and zones, baselines, TLS ports,
    /// trusted CAs, mTLS services and owned, expiring exceptions. See docs/policy.md.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Write only sessions that have at least one finding.
    #[arg(long)]
    pub only_findings: bool,

    /// Also write JA4's raw form (tlstap.client.ja4_r: the sorted lists, not their hashes).
    #[arg(long)]
    pub raw_fingerprints: bool,

    /// Leave findings below this severity out (info, low, medium, high, critical).
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub min_severity: Severity,

    /// Internal network (CIDR); repeatable. Replaces the default set: RFC 1918,
    /// 100.64.0.0/10, fc00::/7, loopback and link-local. Decides network.direction.
    #[arg(long = "internal", value_name = "CIDR", value_parser = parse_network)]
    pub internal: Vec<ipnet::IpNet>,

    /// Close a flow after this many seconds without packets (packet time).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub idle_timeout: u64,

    /// Memory for flows, handshake buffers, certificate caches and records
    /// waiting for output, all workers together (e.g. 256M, 1G; default
    /// 256M, or `[sensor] memcap` of the policy). Near it, idle flows time
    /// out sooner and stalled handshakes are shed; at it, new flows are
    /// refused. The stats record counts what was shed (memcap_*).
    #[arg(long, value_name = "BYTES", value_parser = tlstap::memory::parse_bytes)]
    pub memcap: Option<usize>,

    /// Flows tracked per worker (at least 1); the oldest is evicted (and counted) beyond this.
    #[arg(long, value_name = "N", default_value_t = 131_072,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_flows: usize,

    /// Handshake bytes accepted per direction (at least 1024); a longer handshake is reported with tlstap.truncated.
    #[arg(long, value_name = "BYTES", default_value_t = 65_536,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..))]
    pub max_handshake_bytes: usize,

    /// Persistent inventory (SQLite, created if missing): every session record
    /// is added to it, and drift findings (negotiation_changed, cert_rotated,
    /// cert_not_rotated, new_client_stack) are judged against what it holds.
    #[arg(long, value_name = "PATH")]
    pub inventory: Option<PathBuf>,

    /// Delete inventory rows last seen (and runs started) more than this many
    /// days before the newest record (packet time); at the start and the end
    /// of the run.
    #[arg(long, value_name = "DAYS")]
    pub inventory_retention_days: Option<u32>,

    /// Ignore VLAN ids and tunnel ids (VNI, GRE key, MPLS label, …) when telling
    /// flows apart; by default the same 5-tuple on two VLANs or tunnels is two flows.
    #[arg(long)]
    pub no_vlan_in_flow_key: bool,

    /// Also decode UDP on this port as VXLAN (4789 always is); repeatable.
    #[arg(long, value_name = "PORT")]
    pub vxlan_port: Vec<u16>,

    /// Also decode UDP on this port as GENEVE (6081 always is); repeatable.
    #[arg(long, value_name = "PORT")]
    pub geneve_port: Vec<u16>,

    /// NSS key log (SSLKEYLOGFILE, as OpenSSL, rustls, NSS, Go write it);
    /// repeatable. TLS 1.3 sessions whose handshake secrets it holds are
    /// decrypted: certificates, client certificates and early alerts are then
    /// judged as in TLS 1.2, and the record says tlstap.decrypted. `live`
    /// follows the file as it grows. For staging and test networks only.
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<PathBuf>,
}

/// `--internal`: checked by clap, so a bad value is an argument error (exit 2).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    Networks::parse_block(text).map_err(|error| error.to_string())
}

impl AnalysisArgs {
    pub fn policy(&self) -> Result<Policy> {
        let mut policy = match &self.policy {
            Some(path) => tlstap::policy::load(path)?.0,
            None => Policy::default().with_system_roots(),
        };
        if !self.internal.is_empty() {
            let mut networks = Networks::empty();
            for block in &self.internal {
                networks.push(*block);
            }
            policy.internal = networks;
        }
        Ok(policy)
    }

    pub fn pipeline(&self, workers: Option<u16>, filter: Option<String>) -> Result<PipelineConfig> {
        let mut config = PipelineConfig::default();
        if let Some(workers) = workers {
            config.workers = usize::from(workers);
        }
        config.filter = filter;
        config.flow.max_flows = self.max_flows;
        config.flow.idle_timeout = Duration::from_secs(self.idle_timeout.max(1));
        config.flow.tls.max_handshake_bytes = self.max_handshake_bytes;
        config.flow.tls.max_message_length = self.max_handshake_bytes;
        config.key_on_encap = !self.no_vlan_in_flow_key;
        config.decode.vxlan_ports.extend(&self.vxlan_port);
        config.decode.geneve_ports.extend(&self.geneve_port);
        config.output = OutputOptions {
            only_findings: self.only_findings,
            min_severity: self.min_severity,
            raw_fingerprints: self.raw_fingerprints,
        };
        Ok(config)
    }

    /// Opens `--keylog` (followed when `live`); warns once per file that
    /// anyone on the host can read, since it unlocks every logged session.
    pub fn attach_keylog(&self, config: &mut PipelineConfig, live: bool) -> Result<()> {
        if self.keylog.is_empty() {
            return Ok(());
        }
        let limits = keylog::KeyLogLimits {
            follow: live,
            ..keylog::KeyLogLimits::default()
        };
        let store = keylog::KeyLogStore::open(&self.keylog, limits)?;
        for path in store.world_readable() {
            eprintln!(
                "tlstap: warning: key log {} is world-readable (chmod 600 it)",
                path.display()
            );
        }
        config.keylog = Some(Arc::new(store));
        Ok(())
    }
}

impl AnalysisArgs {
    /// Opens `--inventory`: gives the pipeline what earlier runs saw and the
    /// writer an archive sink that adds every record to it.
    pub fn attach_inventory(
        &self,
        config: &mut PipelineConfig,
        writer: RecordWriter,
        source: &str,
    ) -> Result<RecordWriter> {
        let Some(path) = &self.inventory else {
            return Ok(writer);
        };
        let limits = InventoryLimits {
            retention_days: self.inventory_retention_days,
            ..InventoryLimits::default()
        };
        let mut inventory = Inventory::open(path, limits)?;
        config.known_services = inventory
            .known_services()?
            .into_iter()
            .map(known_service)
            .collect();
        inventory.begin_run(source)?;
        Ok(writer.with_archive(Box::new(InventorySink::new(inventory))))
    }
}

/// The inventory's view of a service, in the policy's terms.
fn known_service(known: tlstap::inventory::KnownService) -> drift::KnownService {
    drift::KnownService {
        server: known.server,
        sni: known.sni,
        negotiations: known
            .negotiations
            .into_iter()
            .map(|n| drift::KnownNegotiation {
                version: n.version,
                protocol: n.protocol,
                cipher: n.cipher,
            })
            .collect(),
        leaves: known
            .leaves
            .into_iter()
            .map(|l| drift::KnownLeaf {
                sha256: l.sha256,
                not_after: l.not_after,
                first_seen: l.first_seen,
                last_seen: l.last_seen,
            })
            .collect(),
        stacks: known.stacks,
        not_rotated_day: known.not_rotated_day,
    }
}

/// Runs `tlstap inventory`.
pub fn inventory(path: &std::path::Path, json: bool) -> Result<i32> {
    let inventory = Inventory::open_read_only(path)?;
    let snapshot = inventory.snapshot()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if json {
        serde_json::to_writer_pretty(&mut out, &snapshot)
            .map_err(std::io::Error::from)
            .and_then(|()| std::io::Write::write_all(&mut out, b"\n"))
    } else {
        print_table(&snapshot, &mut out)
    };
    match written.and_then(|()| std::io::Write::flush(&mut out)) {
        Ok(()) => Ok(0),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(error) => Err(error).context("writing the inventory"),
    }
}

/// Skipped records named on stderr; beyond this they are only counted.
const MAX_SKIP_LINES: u64 = 100;

/// Runs `tlstap inventory ingest`.
pub fn ingest(args: IngestArgs) -> Result<i32> {
    use tlstap::inventory::ingest::{self, IngestCounters};
    let policy = match &args.policy {
        Some(path) => tlstap::policy::load(path)?.0,
        None => Policy::default(),
    };
    let mut inventory = Inventory::open(&args.inventory, InventoryLimits::default())?;
    // Drift across sensors: one memory over every sensor's records, seeded
    // with what the estate inventory already knows.
    let known = inventory
        .known_services()?
        .into_iter()
        .map(known_service)
        .collect();
    let mut estate = tlstap::estate::EstateDrift::new(policy, known);
    inventory.begin_run(&format!("ingest {}", args.sources.join(" ")))?;
    let controls = install_signals()?;
    let mut counters = IngestCounters::default();
    let mut named = 0u64;
    let mut on_skip = |location: ingest::Location<'_>, why: ingest::Skip| {
        named += 1;
        if named <= MAX_SKIP_LINES {
            eprintln!("tlstap: skipped {location}: {why}");
        } else if named == MAX_SKIP_LINES + 1 {
            eprintln!("tlstap: further skipped records are only counted");
        }
    };
    for source in &args.sources {
        if source.starts_with("kafka://") {
            ingest_kafka(
                &args,
                source,
                &mut inventory,
                &controls,
                &mut counters,
                &mut on_skip,
                &mut |record| estate.judge(record),
            )?;
        } else {
            ingest::ingest_file(
                &mut inventory,
                std::path::Path::new(source),
                &mut counters,
                &mut on_skip,
                &mut |record| estate.judge(record),
            )?;
        }
        if controls.stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    inventory.close()?;
    if !args.quiet {
        eprintln!(
            "tlstap: {} records read into {}: {} sessions added, {} other tlstap records, \
             {} skipped, {} applied before, {} refused at the service cap; \
             {} drift findings judged across sensors",
            counters.records_read,
            args.inventory.display(),
            counters.sessions_added,
            counters.not_sessions,
            counters.records_skipped,
            counters.already_applied,
            counters.services_dropped,
            estate.counters().findings_added,
        );
    }
    Ok(0)
}

#[cfg(feature = "kafka")]
fn ingest_kafka(
    args: &IngestArgs,
    source: &str,
    inventory: &mut Inventory,
    controls: &Controls,
    counters: &mut tlstap::inventory::ingest::IngestCounters,
    on_skip: tlstap::inventory::ingest::OnSkip<'_>,
    judge: tlstap::inventory::ingest::Judge<'_>,
) -> Result<()> {
    use tlstap::output::sink::kafka::KafkaTarget;
    let target = KafkaTarget::parse(source)
        .with_context(|| format!("{source:?} is not kafka://BROKER[,BROKER…]/TOPIC"))?;
    let options = tlstap::inventory::ingest::KafkaIngest {
        target,
        group: args.group.clone(),
        properties: args.kafka_property.clone(),
        stop_when_idle: args.stop_when_idle.map(Duration::from_secs),
        max_records: args.max_records,
    };
    tlstap::inventory::ingest::ingest_kafka(
        inventory,
        &options,
        &controls.stop,
        counters,
        on_skip,
        judge,
    )?;
    Ok(())
}

#[cfg(not(feature = "kafka"))]
fn ingest_kafka(
    _: &IngestArgs,
    source: &str,
    _: &mut Inventory,
    _: &Controls,
    _: &mut tlstap::inventory::ingest::IngestCounters,
    _: tlstap::inventory::ingest::OnSkip<'_>,
    _: tlstap::inventory::ingest::Judge<'_>,
) -> Result<()> {
    bail!("{source}: this tlstap was built without the kafka feature")
}

/// Runs `tlstap report`.
pub fn report(args: ReportArgs) -> Result<i32> {
    use tlstap::report::{self, Format, ReportOptions};
    let format: Format = args
        .format
        .parse()
        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let inventory = Inventory::open_read_only(&args.path)?;
    let snapshot = inventory.snapshot()?;
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let generated_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .context("formatting the time")?;
    let mut options = ReportOptions::new(args.title.clone(), generated_at, now);
    options.expiry_warning_days = args.expiry_warning_days;
    if let Some(since) = &args.drift_since {
        options.drift_since =
            Some(report::parse_time(since).map_err(|e| anyhow::anyhow!("--drift-since: {e}"))?);
    }
    let text = report::render(&snapshot, format, &options);
    if args.output.as_os_str() == "-" {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(error) => return Err(error).context("writing the report"),
        }
    } else {
        std::fs::write(&args.output, text)
            .with_context(|| format!("{}: writing the report", args.output.display()))?;
    }
    Ok(0)
}

/// SIGINT/SIGTERM stop the run cleanly (drain, flush, final stats);
/// SIGHUP reopens file outputs.
fn install_signals() -> Result<Controls> {
    let controls = Controls::default();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal asks for a clean stop (records flushed, stats
        // written); a second one ends the process at once (128 + signal), for
        // a run that cannot get to its next check (a read blocked on a silent
        // stdin). The conditional exit runs first, so it fires only when the
        // flag was already set.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            128 + signal,
            Arc::clone(&controls.stop),
        )
        .context("installing signal handlers")?;
        signal_hook::flag::register(signal, Arc::clone(&controls.stop))
            .context("installing signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&controls.reopen))
        .context("installing the SIGHUP handler")?;
    Ok(controls)
}

/// Runs `tlstap read`; returns the process exit code.
pub fn read(args: ReadArgs) -> Result<i32> {
    let policy = args.analysis.policy()?;
    let mut config = args.analysis.pipeline(args.workers, args.filter.clone())?;
    config.memcap = args
        .analysis
        .memcap
        .or(policy.memcap)
        .unwrap_or(config.memcap);
    args.analysis.attach_keylog(&mut config, false)?;
    for file in &args.files {
        if file.as_os_str() != "-" && !file.exists() {
            bail!("{}: no such file", file.display());
        }
    }
    let source = args
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let mut writer =
        args.analysis
            .attach_inventory(&mut config, args.outputs.writer()?, &source)?;
    let controls = install_signals()?;

    let total: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let show_progress =
        !args.no_progress && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let bar = if show_progress {
        let bar = indicatif::ProgressBar::new(total.max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {msg} ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let progress = |bytes: u64, packets: u64| {
        bar.set_position(bytes);
        bar.set_message(format!("{packets} packets"));
    };
    let filter = config.filter.clone();
    let mut sources = args.files.iter().map(|path| {
        FileSource::open(path, filter.as_deref())
            .map(|source| Box::new(source) as Box<dyn PacketSource>)
    });
    let outcome = pipeline::run(
        &mut sources,
        &config,
        &policy,
        &mut writer,
        &controls,
        &progress,
    );
    bar.finish_and_clear();
    let mut outcome = outcome;
    let delivered = close_output(&mut writer, &mut outcome);
    if !args.quiet {
        eprintln!("{}", outcome.stats.human_summary());
    }
    // Also after a failed run: the inventory holds what was read before it.
    let closed = writer.close_archive();
    if let Some(error) = outcome.error {
        return Err(error.into());
    }
    delivered?;
    closed.context("closing the inventory")?;
    Ok(0)
}

/// Ends the output after the run (a Kafka sink delivers its queue here,
/// also after a failed run) and takes its final counters into the stats.
fn close_output(
    writer: &mut RecordWriter,
    outcome: &mut pipeline::RunOutcome,
) -> Result<(), tlstap::output::OutputError> {
    let closed = if outcome.output_closed {
        Ok(())
    } else {
        writer.close_output()
    };
    outcome.stats.sink = writer.sink_counters();
    closed
}

/// Runs `tlstap live`; returns the process exit code.
pub fn live(args: LiveArgs) -> Result<i32> {
    let policy = args.analysis.policy()?;
    let mut config = args.analysis.pipeline(args.workers, args.filter.clone())?;
    config.memcap = args
        .analysis
        .memcap
        .or(policy.memcap)
        .unwrap_or(config.memcap);
    config.overload = if args.overload == "block" {
        Overload::Block
    } else {
        Overload::Drop
    };
    config.stats_interval = Some(std::time::Duration::from_secs(args.stats_interval.max(1)));
    config.status_line = true;
    args.analysis.attach_keylog(&mut config, true)?;
    let options = LiveOptions {
        interface: args.interface.clone(),
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        buffer_bytes: args.buffer_mb.saturating_mul(1 << 20),
        promiscuous: !args.no_promisc,
        ..LiveOptions::default()
    };
    let source = LiveSource::open(&options)?;
    let mut writer = args.analysis.attach_inventory(
        &mut config,
        args.outputs.writer()?,
        &format!("live -i {}", args.interface),
    )?;
    if let Some(user) = &args.user {
        drop_privileges(user)?;
    }
    let controls = install_signals()?;
    let mut sources = std::iter::once(Ok(Box::new(source) as Box<dyn PacketSource>));
    let outcome = pipeline::run(
        &mut sources,
        &config,
        &policy,
        &mut writer,
        &controls,
        &|_, _| {},
    );
    let mut outcome = outcome;
    let delivered = close_output(&mut writer, &mut outcome);
    eprintln!("{}", outcome.stats.human_summary());
    let closed = writer.close_archive();
    if let Some(error) = outcome.error {
        return Err(error.into());
    }
    delivered?;
    closed.context("closing the inventory")?;
    Ok(0)
}

/// Switches to `name`'s uid and gid with no supplementary groups, after the
/// capture handle and outputs are open (they stay usable).
fn drop_privileges(name: &str) -> Result<()> {
    use nix::unistd::{setgid, setgroups, setuid, User};
    let user = User::from_name(name)
        .with_context(|| format!("--user {name}: looking up the user"))?
        .with_context(|| format!("--user {name}: no such user"))?;
    setgroups(&[]).with_context(|| format!("--user {name}: clearing supplementary groups"))?;
    setgid(user.gid).with_context(|| format!("--user {name}: setgid {}", user.gid))?;
    setuid(user.uid).with_context(|| format!("--user {name}: setuid {}", user.uid))?;
    if nix::unistd::geteuid().is_root() {
        bail!("--user {name}: still root after setuid");
    }
    Ok(())
}

/// Runs `tlstap policy check`; returns the process exit code.
pub fn policy_check(file: &std::path::Path) -> Result<i32> {
    let (policy, check) = tlstap::policy::load(file)?;
    println!(
        "{}: valid; {} internal networks, {} zones, {} TLS ports, {} trusted CAs, {} mTLS services, {} exceptions",
        file.display(),
        policy.internal.blocks().len(),
        policy.zones.len(),
        policy.tls_ports.len(),
        policy.certificates.trusted.len(),
        policy.mtls.len(),
        check.exceptions
    );
    for (id, owner, expires) in &check.expired {
        println!("expired: {id} (owner {owner}) expired {expires}");
    }
    for (id, owner, expires) in &check.expiring_soon {
        println!("expiring: {id} (owner {owner}) expires {expires}");
    }
    Ok(0)
}
