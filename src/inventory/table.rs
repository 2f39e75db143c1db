//! `tlstap inventory PATH`: the inventory as text for a terminal, one block
//! per service. Machines use `--json` (the snapshot serialised) instead.

use std::io::Write;

use super::model::{InventorySnapshot, ServiceRow};

/// Writes one block per service, then drift events and runs.
pub fn print_table(snapshot: &InventorySnapshot, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} service(s), {} drift event(s), {} run(s)",
        snapshot.services.len(),
        snapshot.drift.len(),
        snapshot.runs.len()
    )?;
    for service in &snapshot.services {
        writeln!(out)?;
        print_service(service, out)?;
    }
    if !snapshot.drift.is_empty() {
        writeln!(out, "\ndrift:")?;
        for event in &snapshot.drift {
            writeln!(
                out,
                "  {}  {}  {}:{} {}  {}",
                event.time,
                event.id,
                event.key.ip,
                event.key.port,
                sni_text(&event.key.sni),
                event.message
            )?;
        }
    }
    if !snapshot.runs.is_empty() {
        writeln!(out, "\nruns:")?;
        for run in &snapshot.runs {
            writeln!(
                out,
                "  {}  {} record(s)  {}",
                run.started, run.records, run.source
            )?;
        }
    }
    Ok(())
}

fn sni_text(sni: &str) -> &str {
    if sni.is_empty() {
        "(no sni)"
    } else {
        sni
    }
}

fn print_service(service: &ServiceRow, out: &mut impl Write) -> std::io::Result<()> {
    let name = service.name.as_deref().unwrap_or("(unnamed service)");
    match &service.owner {
        Some(owner) => writeln!(out, "{name}  owner {owner}")?,
        None => writeln!(out, "{name}")?,
    }
    writeln!(
        out,
        "  {}:{}  sni {}  {} {}",
        service.key.ip,
        service.key.port,
        sni_text(&service.key.sni),
        service.direction,
        service.protocol
    )?;
    writeln!(
        out,
        "  seen {} .. {}  sessions {} tls, {} plaintext",
        service.first_seen, service.last_seen, service.sessions, service.plaintext_sessions
    )?;
    if !service.negotiations.is_empty() {
        writeln!(out, "  negotiations:")?;
        for n in &service.negotiations {
            writeln!(
                out,
                "    {:<9} {:<45} {:>7}",
                format!("{} {}", n.protocol, n.version),
                n.cipher,
                n.sessions
            )?;
        }
    }
    if !service.certificates.is_empty() {
        writeln!(out, "  leaf certificates:")?;
        for c in &service.certificates {
            writeln!(
                out,
                "    {}  {}  not_after {}  sessions {}",
                c.sha256, c.subject, c.not_after, c.sessions
            )?;
        }
    }
    if !service.clients.is_empty() {
        writeln!(out, "  client stacks:")?;
        for c in &service.clients {
            let plus = if c.distinct_clients_capped { "+" } else { "" };
            writeln!(
                out,
                "    {:<14} {:<38} sessions {:>6}  clients {}{plus}",
                if c.stack.is_empty() { "-" } else { &c.stack },
                if c.ja4.is_empty() { "-" } else { &c.ja4 },
                c.sessions,
                c.distinct_clients
            )?;
        }
    }
    if !service.findings.is_empty() {
        writeln!(out, "  findings:")?;
        for f in &service.findings {
            let excepted = if f.excepted > 0 {
                format!(", {} excepted", f.excepted)
            } else {
                String::new()
            };
            writeln!(
                out,
                "    {:<30} {:>6}  ({}{excepted})",
                f.id, f.count, f.severity
            )?;
        }
    }
    for e in &service.exceptions {
        writeln!(
            out,
            "  exception {} (owner {}, expires {}) covered {} x{}",
            e.id,
            e.owner,
            e.expires,
            e.finding_ids.join(","),
            e.count
        )?;
    }
    for c in &service.invalid_cert_clients {
        writeln!(
            out,
            "  client {} ({}) accepted an invalid certificate: {} x{}",
            c.client_ip,
            if c.stack.is_empty() { "-" } else { &c.stack },
            c.problems.join(","),
            c.count
        )?;
    }
    Ok(())
}
