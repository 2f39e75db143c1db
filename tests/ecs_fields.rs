//! Every ECS-named field tlstap writes exists in the ECS reference with a
//! compatible JSON type; everything else lives under `tlstap.*`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::*;

#[derive(Debug, serde::Deserialize)]
struct EcsField {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    normalize: Vec<String>,
}

/// Elastic's flat field reference, kept beside the corpus in `../shared/ecs`.
fn ecs_reference(test: &str) -> Option<BTreeMap<String, EcsField>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/ecs/ecs_flat.yml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        skipped(test, &path);
        return None;
    };
    Some(serde_yaml::from_str(&text).expect("ecs_flat.yml parses"))
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, child, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn scalar_fits(kind: &str, value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (kind, value) {
        (
            "keyword" | "wildcard" | "constant_keyword" | "match_only_text" | "text",
            Value::String(_),
        ) => true,
        ("long" | "integer" | "short" | "byte" | "unsigned_long", Value::Number(n)) => {
            n.is_i64() || n.is_u64()
        }
        ("float" | "double" | "scaled_float" | "half_float", Value::Number(_)) => true,
        ("boolean", Value::Bool(_)) => true,
        ("ip", Value::String(s)) => s.parse::<std::net::IpAddr>().is_ok(),
        ("date", Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        }
        _ => false,
    }
}

fn check(
    record: &serde_json::Value,
    reference: &BTreeMap<String, EcsField>,
    problems: &mut Vec<String>,
) -> usize {
    let mut fields = Vec::new();
    flatten("", record, &mut fields);
    let mut checked = 0;
    for (name, value) in fields {
        if name.starts_with("tlstap.") {
            continue;
        }
        checked += 1;
        let Some(field) = reference.get(&name) else {
            problems.push(format!("{name}: not an ECS field"));
            continue;
        };
        let ok = match &value {
            serde_json::Value::Array(items) => {
                field.normalize.iter().any(|n| n == "array")
                    && items.iter().all(|i| scalar_fits(&field.kind, i))
            }
            scalar => scalar_fits(&field.kind, scalar),
        };
        if !ok {
            problems.push(format!(
                "{name}: {value} does not fit ECS type {} {:?}",
                field.kind, field.normalize
            ));
        }
    }
    checked
}

#[test]
fn every_ecs_named_field_exists_in_ecs_with_a_compatible_type() {
    let Some(reference) =
        ecs_reference("every_ecs_named_field_exists_in_ecs_with_a_compatible_type")
    else {
        return;
    };
    let mut records = Vec::new();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    for name in [
        "tls13.pcap",
        "tls12-client-cert.pcap",
        "tls12-unknown-ca-alert.pcap",
        "tls13-hrr.pcap",
        "tls10.pcap",
    ] {
        let path = samples.join(name);
        let (code, mut found, stderr) = run_tlstap(&["read", "-q", path.to_str().expect("path")]);
        assert_eq!(code, 0, "{stderr}");
        records.append(&mut found);
    }
    // The example policy names the service (service.target.name).
    let path = samples.join("tls13.pcap");
    let policy = samples.join("policy.toml");
    let (_, mut found, _) = run_tlstap(&[
        "read",
        "-q",
        "--policy",
        policy.to_str().expect("p"),
        path.to_str().expect("path"),
    ]);
    records.append(&mut found);
    // A VLAN-tagged rustls session adds network.vlan.id.
    let dir = temp_dir();
    let pki = Pki::new(&["api.internal"]);
    let framing = Framing {
        vlan: Some(7),
        ..Framing::default()
    };
    let path = handshake_pcap(
        dir.path(),
        "vlan.pcap",
        &pki,
        &HandshakeOptions::default(),
        &framing,
    );
    let (_, mut found, _) = run_tlstap(&["read", "-q", path.to_str().expect("path")]);
    records.append(&mut found);

    let mut problems = Vec::new();
    let mut checked = 0;
    for record in &records {
        checked += check(record, &reference, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The leaf certificate, client certificate, VLAN and core fields were all seen.
    assert!(checked >= 200, "only {checked} ECS values checked");
    for expected in [
        "tls.server.x509.not_after",
        "tls.client.x509.subject.common_name",
        "network.vlan.id",
        "network.community_id",
        "service.target.name",
        "observer.name",
        "observer.hostname",
    ] {
        assert!(
            records.iter().any(|r| !field(r, expected).is_null()),
            "{expected} never appeared"
        );
    }
}

#[test]
fn a_field_outside_ecs_is_caught() {
    let Some(reference) = ecs_reference("a_field_outside_ecs_is_caught") else {
        return;
    };
    let bad = serde_json::json!({"tls": {"ja4": "t13d"}, "source": {"port": "443"}});
    let mut problems = Vec::new();
    check(&bad, &reference, &mut problems);
    assert_eq!(problems.len(), 2, "{problems:?}");
}
