//! `tlstap live` end to end: two network namespaces joined by a veth pair,
//! OpenSSL s_server in one and s_client in the other, tlstap capturing on the
//! veth. Needs root (CI runs as root); skips with a message otherwise.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn skip_reason() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root");
    }
    for tool in ["ip", "openssl"] {
        if Command::new(tool)
            .arg("help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Some("ip or openssl missing");
        }
    }
    None
}

/// Two namespaces and a veth pair, removed on drop.
struct Lab {
    server_ns: String,
    client_ns: String,
    server_ip: String,
    dir: tempfile::TempDir,
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("spawn");
    assert!(status.success(), "{args:?} failed");
}

impl Lab {
    fn new(tag: &str, subnet: u8) -> Self {
        let server_ns = format!("tlstap-{tag}-s-{}", std::process::id());
        let client_ns = format!("tlstap-{tag}-c-{}", std::process::id());
        for ns in [&server_ns, &client_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run(&[
            "ip", "link", "add", "tapveth", "netns", &server_ns, "type", "veth", "peer", "name",
            "tapveth", "netns", &client_ns,
        ]);
        let server_ip = format!("10.199.{subnet}.1");
        let client_ip = format!("10.199.{subnet}.2");
        run(&[
            "ip",
            "-n",
            &server_ns,
            "addr",
            "add",
            &format!("{server_ip}/24"),
            "dev",
            "tapveth",
        ]);
        run(&[
            "ip",
            "-n",
            &client_ns,
            "addr",
            "add",
            &format!("{client_ip}/24"),
            "dev",
            "tapveth",
        ]);
        run(&["ip", "-n", &server_ns, "link", "set", "tapveth", "up"]);
        run(&["ip", "-n", &client_ns, "link", "set", "tapveth", "up"]);
        let dir = temp_dir();
        let lab = Lab {
            server_ns,
            client_ns,
            server_ip,
            dir,
        };
        lab.make_certificates();
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn make_certificates(&self) {
        for (name, cn) in [("server", "api.internal"), ("client", "client.internal")] {
            let key = self.path(&format!("{name}.key"));
            let cert = self.path(&format!("{name}.pem"));
            run(&[
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                key.to_str().expect("p"),
                "-out",
                cert.to_str().expect("p"),
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                &format!("subjectAltName=DNS:{cn}"),
                "-days",
                "30",
            ]);
        }
    }

    fn in_server(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.server_ns]).args(args);
        command
    }

    fn in_client(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.client_ns]).args(args);
        command
    }

    fn start_server(&self) -> Child {
        let child = self
            .in_server(&[
                "openssl",
                "s_server",
                "-accept",
                "4433",
                "-www",
                "-quiet",
                "-cert",
                self.path("server.pem").to_str().expect("p"),
                "-key",
                self.path("server.key").to_str().expect("p"),
                "-verify",
                "1",
                "-CAfile",
                self.path("client.pem").to_str().expect("p"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s_server");
        self.wait_until_listening();
        child
    }

    /// Waits until the server port accepts connections.
    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let probe = self
                .in_client(&[
                    "bash",
                    "-c",
                    &format!("exec 3<>/dev/tcp/{}/4433", self.server_ip),
                ])
                .stderr(Stdio::null())
                .status();
            if probe.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nothing listens on {}:4433", self.server_ip);
    }

    /// One TLS connection with a request; `extra` are s_client options.
    fn client(&self, extra: &[&str]) {
        let connect = format!("{}:4433", self.server_ip);
        let mut args = vec![
            "openssl",
            "s_client",
            "-connect",
            &connect,
            "-servername",
            "api.internal",
            "-quiet",
        ];
        args.extend_from_slice(extra);
        let mut child = self
            .in_client(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s_client");
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"GET / HTTP/1.0\r\n\r\n");
        wait_with_timeout(&mut child, Duration::from_secs(15));
    }

    fn start_tlstap(&self, output: &Path, extra: &[&str]) -> Child {
        let binary = env!("CARGO_BIN_EXE_tlstap");
        let destination = format!("file:{}", output.display());
        let mut args = vec![
            binary,
            "live",
            "-i",
            "tapveth",
            "-w",
            "2",
            "--stats-interval",
            "1",
            "-o",
            &destination,
        ];
        args.extend_from_slice(extra);
        let child = self
            .in_server(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tlstap live");
        // Give libpcap a moment to attach before traffic starts.
        std::thread::sleep(Duration::from_millis(700));
        child
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    wait_with_timeout(child, Duration::from_secs(20)).expect("tlstap exited")
}

/// Polls `path` until a record matches (the machine may be busy: no fixed sleeps).
fn wait_for(path: &Path, matches: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if records(path).iter().any(&matches) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no matching record in {} after 30 s", path.display());
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}")))
        .collect()
}

#[test]
fn live_capture_on_a_veth_reports_sessions_and_stats_and_exits_cleanly_on_sigterm() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason} (the live test needs root, ip and openssl)");
        return;
    }
    let lab = Lab::new("live", 1);
    let output = lab.path("live.ndjson");
    let mut tlstap = lab.start_tlstap(&output, &[]);
    let mut server = lab.start_server();
    lab.client(&["-tls1_3"]);
    // logrotate: move the file away, SIGHUP, and the next records go to a new file.
    wait_for(&output, |r| r["tls"]["version"] == "1.3");
    let rotated = lab.path("live.ndjson.1");
    std::fs::rename(&output, &rotated).expect("rotate");
    let pid = nix::unistd::Pid::from_raw(tlstap.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    std::thread::sleep(Duration::from_millis(400));
    lab.client(&[
        "-tls1_2",
        "-cert",
        lab.path("client.pem").to_str().expect("p"),
        "-key",
        lab.path("client.key").to_str().expect("p"),
    ]);
    wait_for(&output, |r| r["tls"]["version"] == "1.2");
    wait_for(&output, |r| r["event"]["dataset"] == "tlstap.stats"); // a periodic one
    let status = terminate(&mut tlstap);
    let _ = server.kill();
    let _ = server.wait();
    let mut stderr = String::new();
    use std::io::Read;
    let _ = tlstap
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    assert!(
        status.success(),
        "tlstap live exited with {status}: {stderr}"
    );

    let before = records(&rotated);
    assert!(
        before.iter().any(|r| r["tls"]["version"] == "1.3"),
        "the first session went to the rotated file: {before:#?}"
    );
    let mut all = before;
    all.extend(records(&output));
    assert!(
        records(&output)
            .iter()
            .any(|r| r["tls"]["version"] == "1.2"),
        "after SIGHUP the reopened file gets the next session"
    );
    let sessions: Vec<_> = all
        .iter()
        .filter(|r| r["event"]["dataset"] == "tlstap.tls")
        .collect();
    let stats: Vec<_> = all
        .iter()
        .filter(|r| r["event"]["dataset"] == "tlstap.stats")
        .collect();
    // The probe connections made while waiting for s_server are plain TCP
    // without payload and produce no record.
    let tls13: Vec<_> = sessions
        .iter()
        .filter(|r| r["tls"]["version"] == "1.3")
        .collect();
    let tls12: Vec<_> = sessions
        .iter()
        .filter(|r| r["tls"]["version"] == "1.2")
        .collect();
    assert_eq!(tls13.len(), 1, "{sessions:#?}");
    assert_eq!(tls12.len(), 1, "{sessions:#?}");
    assert_eq!(string(tls13[0], "tls.client.server_name"), "api.internal");
    assert_eq!(string(tls13[0], "destination.ip"), lab.server_ip);
    assert_eq!(field(tls13[0], "destination.port"), 4433);
    assert_eq!(field(tls13[0], "tls.established"), true);
    assert_eq!(
        field(tls12[0], "tls.client.x509.subject.common_name"),
        &serde_json::json!(["client.internal"])
    );
    assert_eq!(
        field(tls12[0], "tls.server.x509.subject.common_name"),
        &serde_json::json!(["api.internal"])
    );
    assert!(
        stats.len() >= 2,
        "a periodic and a final stats record: {}",
        stats.len()
    );
    let last = &stats[stats.len() - 1]["tlstap"]["stats"];
    assert_eq!(last["tls_sessions"], 2);
    assert!(last["packets"].as_u64().expect("packets") > 10);
    assert_eq!(last["kernel_drops"], 0);
    assert_eq!(last["user_drops"], 0);
    assert!(
        last["kernel_received"].as_u64().is_some(),
        "live stats carry libpcap's counters"
    );
    assert!(stderr.contains("2 TLS sessions"), "{stderr}");
}

#[test]
fn privileges_are_dropped_after_the_interface_is_open_and_capture_goes_on() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason} (the privilege test needs root, ip and openssl)");
        return;
    }
    let lab = Lab::new("priv", 2);
    let output = lab.path("priv.ndjson");
    let mut tlstap = lab.start_tlstap(&output, &["--user", "nobody"]);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", tlstap.id())).expect("proc status");
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("lookup")
        .expect("nobody exists")
        .uid
        .to_string();
    assert_eq!(
        uids,
        vec![nobody.as_str(); 4],
        "real, effective, saved and fs uid: {uid_line}"
    );
    let groups = status
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .expect("Groups line");
    assert_eq!(groups.trim(), "Groups:", "supplementary groups cleared");
    let mut server = lab.start_server();
    lab.client(&["-tls1_3"]);
    wait_for(&output, |r| r["tls"]["version"] == "1.3");
    let status = terminate(&mut tlstap);
    let _ = server.kill();
    let _ = server.wait();
    assert!(status.success());
    let sessions: Vec<_> = records(&output)
        .into_iter()
        .filter(|r| r["event"]["dataset"] == "tlstap.tls")
        .collect();
    assert_eq!(sessions.len(), 1, "still capturing after the drop");
    assert_eq!(string(&sessions[0], "tls.version"), "1.3");
}

#[test]
fn idle_half_open_handshake_is_flushed_on_the_wall_clock_without_new_packets() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason} (the live test needs root, ip and openssl)");
        return;
    }
    let lab = Lab::new("idle", 3);
    let output = lab.path("idle.ndjson");
    let mut tlstap = lab.start_tlstap(&output, &["--idle-timeout", "1"]);
    // A server that accepts and never answers: the ClientHello stays unanswered.
    let mut silent = lab
        .in_server(&[
            "python3",
            "-c",
            "import socket\ns=socket.socket()\ns.bind(('0.0.0.0',4433))\ns.listen(8)\nkeep=[]\nwhile True:\n    keep.append(s.accept())",
        ])
        .spawn()
        .expect("silent server");
    lab.wait_until_listening();
    let connect = format!("{}:4433", lab.server_ip);
    let mut client = lab
        .in_client(&[
            "openssl",
            "s_client",
            "-connect",
            &connect,
            "-servername",
            "idle.internal",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_client");
    // No packet flows after the ClientHello; the record must still come.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut found = None;
    while Instant::now() < deadline && found.is_none() {
        found = records(&output)
            .into_iter()
            .find(|r| r["tls"]["client"]["server_name"] == "idle.internal");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = client.kill();
    let _ = client.wait();
    let _ = silent.kill();
    let _ = silent.wait();
    assert!(terminate(&mut tlstap).success());
    let record = found.expect("the idle session was written before shutdown");
    assert_eq!(string(&record, "tlstap.end_reason"), "idle_timeout");
    assert_eq!(field(&record, "tls.established"), false);
    assert!(
        field(&record, "tls.version").is_null(),
        "no ServerHello was ever sent"
    );
}

#[test]
fn live_follows_a_growing_key_log_and_decrypts_tls13_after_dropping_privileges() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason} (the key-log test needs root, ip and openssl)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new("keys", 4);
    let output = lab.path("keys.ndjson");
    let keys = lab.path("keys.log");
    std::fs::write(&keys, "").expect("key log");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // Empty at start: the client appends its secrets while tlstap runs.
    let mut tlstap = lab.start_tlstap(
        &output,
        &["--keylog", keys.to_str().expect("path"), "--user", "nobody"],
    );
    let mut server = lab.start_server();
    lab.client(&["-tls1_3", "-keylogfile", keys.to_str().expect("path")]);
    wait_for(&output, |r| r["tls"]["version"] == "1.3");
    let status = terminate(&mut tlstap);
    let _ = server.kill();
    let _ = server.wait();
    assert!(status.success());
    let sessions: Vec<_> = records(&output)
        .into_iter()
        .filter(|r| r["event"]["dataset"] == "tlstap.tls")
        .collect();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        field(&sessions[0], "tlstap.decrypted"),
        &serde_json::json!(true),
        "{}",
        sessions[0]
    );
    assert!(string(&sessions[0], "tls.server.subject").contains("CN="));
}
