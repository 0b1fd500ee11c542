//! The real binary: `callops business add|set|show` keeps credentials as references and
//! never prints a secret; `[businesses."NAME"]` in a config file is applied; `import`
//! parses national numbers with each business's own region and reports every phone it
//! cannot parse by line; `callops config` masks keys and URL passwords.

use callops::store::Store;
use std::process::Command;

struct Env {
    dir: tempfile::TempDir,
    url: String,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("b.db").display());
        Env { dir, url }
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_callops"));
        c.args(["--data-dir", &self.dir.path().display().to_string()])
            .args(args)
            .env("CALLOPS_DATABASE_URL", &self.url)
            .env_remove("CALLOPS_BROKER")
            .env_remove("CALLOPS_CONFIG");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[tokio::test]
async fn business_settings_keep_references_and_regions_parse_phones() {
    let e = Env::new();
    let (ok, out, err) = e.run(
        &[
            "business",
            "add",
            "Bharat Clinic",
            "--region",
            "IN",
            "--stt",
            "sarvam",
            "--stt-key",
            "env:BHARAT_SARVAM_KEY",
            "--llm",
            "openai",
            "--llm-key",
            "file:/run/secrets/bharat_openai",
            "--crm",
            "leadsquared",
            "--crm-base-url",
            "https://api-in21.leadsquared.com",
            "--crm-key",
            "env:BHARAT_LSQ_ACCESS",
            "--crm-secret",
            "env:BHARAT_LSQ_SECRET",
        ],
        &[("BHARAT_SARVAM_KEY", "sv-live-XYZZY-1")],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("env:BHARAT_SARVAM_KEY") && out.contains("region") && out.contains("IN"),
        "{out}"
    );
    let (ok, _, err) = e.run(&["business", "add", "Berlin Dental", "--region", "DE"], &[]);
    assert!(ok, "{err}");

    // A key in clear is refused, and not echoed.
    let (ok, out, err) = e.run(
        &[
            "business",
            "set",
            "Bharat Clinic",
            "--stt-key",
            "sv-live-XYZZY-2",
        ],
        &[],
    );
    assert!(
        !ok && err.contains("references") && err.contains("env:NAME"),
        "{err}"
    );
    assert!(
        !err.contains("XYZZY") && !out.contains("XYZZY"),
        "{err}{out}"
    );
    let (ok, _, err) = e.run(
        &["business", "set", "Bharat Clinic", "--stt", "whisperx"],
        &[],
    );
    assert!(!ok && err.contains("accepted"), "{err}");

    // show: references, never their values (even where the variable is set).
    let (ok, out, err) = e.run(
        &["business", "show", "Bharat Clinic", "--json"],
        &[("BHARAT_SARVAM_KEY", "sv-live-XYZZY-1")],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stt_key"], "env:BHARAT_SARVAM_KEY");
    assert_eq!(v["region"], "IN");

    // Import: national numbers parsed with each business's region; each bad phone by line.
    let file = e.dir.path().join("customers.jsonl");
    std::fs::write(
        &file,
        [
            r#"{"business":"Bharat Clinic","name":"Asha Rao","phone":"098450 98450"}"#,
            r#"{"business":"Berlin Dental","name":"Jonas Weber","phone":"030 1234567"}"#,
            r#"{"business":"Berlin Dental","name":"Too Short","phone":"1234"}"#,
            r#"{"business":"Bharat Clinic","name":"No Digits","phone":"call me"}"#,
            r#"{"business":"Nowhere","name":"X","phone":"+4930123456"}"#,
            r#"{"business":"Berlin Dental","name":"Esc\u001b[31m","phone":"+4930123456"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let (ok, out, err) = e.run(&["import", "customers", &file.display().to_string()], &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("created 2"), "{out}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(": rejected: ")).collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].contains(":3: rejected: phone could not be parsed with region DE"),
        "{err}"
    );
    assert!(
        lines[1].contains(":4: rejected: phone could not be parsed with region IN"),
        "{err}"
    );
    assert!(
        lines[2].contains(":5: rejected: business \"Nowhere\" does not exist"),
        "{err}"
    );
    assert!(
        lines[3].contains(":6: rejected: name contains an escape sequence"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'));
    let store = Store::open_migrated(&e.url, 1).await.unwrap();
    let phones: Vec<String> = sqlx::query_scalar("SELECT phone FROM customers ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(phones, ["+919845098450", "+49301234567"]);
    let refs: Option<String> =
        sqlx::query_scalar("SELECT stt_key_ref FROM businesses WHERE name = 'Bharat Clinic'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(refs.as_deref(), Some("env:BHARAT_SARVAM_KEY"));
    store.close().await;

    // [businesses."NAME"] in a config file, applied.
    let cfg = e.dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[businesses.\"Berlin Dental\"]\nstt = \"deepgram\"\nstt_key = \"env:BERLIN_DG\"\n\n[businesses.\"New York Smiles\"]\nregion = \"US\"\n",
    )
    .unwrap();
    let cfg_s = cfg.display().to_string();
    let (ok, out, err) = e.run(&["--config", &cfg_s, "business", "apply"], &[]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Berlin Dental") && out.contains("New York Smiles"),
        "{out}"
    );
    let (_, out, _) = e.run(&["--config", &cfg_s, "business", "apply"], &[]);
    assert!(
        out.contains("changed: none"),
        "re-applying changes nothing: {out}"
    );
    let (_, out, _) = e.run(&["business", "show", "New York Smiles"], &[]);
    assert!(out.contains("US"), "{out}");
}

#[test]
fn config_output_masks_keys_and_url_passwords() {
    let e = Env::new();
    let (ok, out, err) = e.run(
        &["config"],
        &[
            (
                "CALLOPS_DATABASE_URL",
                "postgres://alice@db.internal/callops?password=pg-SECRET-1",
            ),
            (
                "CALLOPS_AMQP_URL",
                "amqp://callops:mq-SECRET-2@mq.internal:5672/%2f",
            ),
            (
                "CALLOPS_BROKER_MANAGEMENT_URL",
                "http://callops:mq-SECRET-3@mq.internal:15672",
            ),
            ("CALLOPS_PROVIDERS_STT_API_KEY", "dg-SECRET-4"),
            ("CALLOPS_PROVIDERS_CRM_API_SECRET", "lsq-SECRET-5"),
        ],
    );
    assert!(ok, "{err}");
    assert!(!out.contains("SECRET"), "{out}");
    assert!(
        out.contains("password=REDACTED") && out.contains("callops:REDACTED@mq.internal"),
        "{out}"
    );
    assert!(out.contains("alice@db.internal"), "{out}");
}
