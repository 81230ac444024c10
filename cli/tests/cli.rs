//! The `veil` binary end to end: `verify` on the committed fixtures (exit 0 valid, 1 invalid,
//! 2 bad input, one line each, or one JSON object), `keys info`, and a whole small pipeline
//! (`setup` -> `dev-batches` -> `prove` -> `verify`) at B = 1, D = 8, including a proving key of
//! the wrong shape.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod veil_bin;
use veil_bin::{text, veil};

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/data")
        .join(name)
        .display()
        .to_string()
}

/// Asserts exit code 2 and exactly one line, `error: ...`, on stderr, nothing on stdout.
fn assert_bad_input(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn verify(batch: &str, proof: &str) -> Output {
    veil(&[
        "verify",
        "--vk",
        &data("vk-B2-D8.bin"),
        "--batch",
        batch,
        "--proof",
        proof,
    ])
}

#[test]
fn verify_committed_fixture() {
    let out = verify(&data("batch-1.json"), &data("proof-1.json"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let line = text(&out.stdout);
    assert_eq!(line.lines().count(), 1);
    assert!(
        line.starts_with("valid: batch 1, B=2, D=8, new root 0x"),
        "{line}"
    );

    let mut args = vec!["verify", "--json", "--vk"];
    let (vk, batch, proof) = (
        data("vk-B2-D8.bin"),
        data("batch-1.json"),
        data("proof-1.json"),
    );
    args.extend([vk.as_str(), "--batch", &batch, "--proof", &proof]);
    let out = veil(&args);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["batch_number"], 1);

    // Another batch's proof: a mismatch of files, not a cryptographic verdict.
    let out = verify(&data("batch-0.json"), &data("proof-1.json"));
    assert!(assert_bad_input(&out).contains("batch"));
}

#[test]
fn verify_flipped_digit_is_invalid() {
    let proof = std::fs::read_to_string(data("proof-2.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&proof).unwrap();
    let hex = file["proof"].as_str().unwrap().to_string();
    // The first single-digit change (in C, the last 64 digits) that still decodes to a valid
    // proof encoding, so the pairing check is what rejects it.
    let flipped = (192..256)
        .flat_map(|i| (1u8..16).map(move |x| (i, x)))
        .map(|(i, x)| {
            let d = u8::from_str_radix(&hex[i..i + 1], 16).unwrap() ^ x;
            format!("{}{:x}{}", &hex[..i], d, &hex[i + 1..])
        })
        .find(|h| veil_prover::proof::proof_from_hex(h).is_ok())
        .expect("some flip decodes");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("proof.json");
    std::fs::write(&bad, proof.replace(&hex, &flipped)).unwrap();
    let out = verify(&data("batch-2.json"), bad.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let line = text(&out.stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("invalid: batch 2"), "{line}");

    // A flip that breaks the encoding is bad input, not an invalid proof.
    let undecodable = format!("{}{}", &hex[..192], "f".repeat(64));
    std::fs::write(&bad, proof.replace(&hex, &undecodable)).unwrap();
    let err = assert_bad_input(&verify(&data("batch-2.json"), bad.to_str().unwrap()));
    assert!(err.contains("element C"), "{err}");
}

#[test]
fn verify_bad_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let err = assert_bad_input(&verify(missing.to_str().unwrap(), &data("proof-1.json")));
    assert!(err.contains("missing.json"), "{err}");
    assert_bad_input(&verify(&data("batch-1.json"), missing.to_str().unwrap()));

    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\"version\": 1, \"batch_size\": ").unwrap();
    assert_bad_input(&verify(corrupt.to_str().unwrap(), &data("proof-1.json")));
    assert_bad_input(&verify(&data("batch-1.json"), corrupt.to_str().unwrap()));

    // A transfer changed without its batch_hash: refused before any cryptography.
    let mut batch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("batch-2.json")).unwrap()).unwrap();
    batch["transfers"][1]["fee"] = 11.into();
    let edited = dir.path().join("batch.json");
    std::fs::write(&edited, batch.to_string()).unwrap();
    let err = assert_bad_input(&verify(edited.to_str().unwrap(), &data("proof-2.json")));
    assert!(err.contains("batch_hash"), "{err}");

    // Unknown fields are refused.
    let mut batch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("batch-2.json")).unwrap()).unwrap();
    batch["note"] = "hello".into();
    std::fs::write(&edited, batch.to_string()).unwrap();
    assert_bad_input(&verify(edited.to_str().unwrap(), &data("proof-2.json")));

    // With --json, errors are one JSON object on stdout.
    let out = veil(&[
        "verify",
        "--json",
        "--vk",
        &data("vk-B2-D8.bin"),
        "--batch",
        missing.to_str().unwrap(),
        "--proof",
        &data("proof-1.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "batch_file");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing.json"));
}

#[test]
fn keys_info_reports_vk_identity() {
    let out = veil(&["keys", "info", "--json", &data("vk-B2-D8.bin")]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "verifying");
    assert_eq!(v["batch_size"], 2);
    assert_eq!(v["depth"], 8);
    assert_eq!(v["format_version"], veil_prover::keys::KEY_FORMAT_VERSION);
    assert_eq!(v["shape_hash_matches_build"], true);
    assert_eq!(v["public_inputs"], 3);
    let vk = std::fs::read(data("vk-B2-D8.bin")).unwrap();
    assert_eq!(v["vk_sha256"], veil_prover::keys::vk_sha256(&vk));
    let proof: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("proof-0.json")).unwrap()).unwrap();
    assert_eq!(v["vk_sha256"], proof["vk_sha256"]);
    assert_bad_input(&veil(&["keys", "info", &data("batch-0.json")]));
}

/// B = 1, D = 8 dev keys made by `veil setup` once per test binary.
fn small_keys() -> &'static PathBuf {
    static KEYS: OnceLock<PathBuf> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-keys-B1-D8");
        let out = veil(&[
            "setup",
            "--batch-size",
            "1",
            "--depth",
            "8",
            "--dev-seed",
            "1",
            "--force",
            "--out-dir",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("WARNING: INSECURE dev keys (--dev-seed 1): anyone can forge proofs"),
            "{err}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("pk-B1-D8.bin"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the proving key is private");
        }
        dir
    })
}

#[test]
fn small_pipeline_setup_prove_verify() {
    let keys = small_keys();
    let pk = keys.join("pk-B1-D8.bin");
    let vk = keys.join("vk-B1-D8.bin");
    let dir = tempfile::tempdir().unwrap();
    let out = veil(&[
        "dev-batches",
        "-b",
        "1",
        "-d",
        "8",
        "--seed",
        "3",
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let batch = dir.path().join("batch-3.json");
    assert!(batch.exists(), "{}", text(&out.stdout));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&batch).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "witnesses are private");
    }
    let proof = dir.path().join("proof.json");
    let out = veil(&[
        "prove",
        "--batch",
        batch.to_str().unwrap(),
        "--pk",
        pk.to_str().unwrap(),
        "--out",
        proof.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let verify_small = |batch: &Path| {
        veil(&[
            "verify",
            "--vk",
            vk.to_str().unwrap(),
            "--batch",
            batch.to_str().unwrap(),
            "--proof",
            proof.to_str().unwrap(),
        ])
    };
    let out = verify_small(&batch);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).starts_with("valid: batch 3, B=1, D=8"));
    // The public part alone is enough to verify.
    let mut public: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&batch).unwrap()).unwrap();
    public.as_object_mut().unwrap().remove("witness");
    let public_path = dir.path().join("public.json");
    std::fs::write(&public_path, public.to_string()).unwrap();
    assert_eq!(verify_small(&public_path).status.code(), Some(0));
    // ...but not to prove.
    let err = assert_bad_input(&veil(&[
        "prove",
        "--batch",
        public_path.to_str().unwrap(),
        "--pk",
        pk.to_str().unwrap(),
        "--out",
        proof.to_str().unwrap(),
    ]));
    assert!(err.contains("witness"), "{err}");
    // The B = 2 fixture's vk does not fit a B = 1 proof.
    let out = veil(&[
        "verify",
        "--vk",
        &data("vk-B2-D8.bin"),
        "--batch",
        batch.to_str().unwrap(),
        "--proof",
        proof.to_str().unwrap(),
    ]);
    assert!(assert_bad_input(&out).contains("B = 2"));
}

#[test]
fn prove_with_wrong_shape_key_fails_cleanly() {
    let pk = small_keys().join("pk-B1-D8.bin");
    let dir = tempfile::tempdir().unwrap();
    let out = veil(&[
        "prove",
        "--batch",
        &data("batch-1.json"),
        "--pk",
        pk.to_str().unwrap(),
        "--out",
        dir.path().join("proof.json").to_str().unwrap(),
    ]);
    let err = assert_bad_input(&out);
    assert!(
        err.contains("key is for B = 1, D = 8, but the circuit is B = 2, D = 8"),
        "{err}"
    );
    assert!(!dir.path().join("proof.json").exists());
}

#[test]
fn job_queue_commands_refuse_bad_input_in_one_line() {
    let no_url = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["jobs", "status"])
        .env_remove("VEIL_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = assert_bad_input(&no_url);
    assert!(err.contains("VEIL_DATABASE_URL"), "{err}");
    let err = assert_bad_input(&veil(&[
        "jobs",
        "status",
        "--database-url",
        "postgres://veil:hunter2@db:notaport/veil",
    ]));
    assert!(err.contains("invalid database URL"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    // Nothing listens on port 1: a clear connection error, not a hang or a panic.
    let err = assert_bad_input(&veil(&[
        "jobs",
        "status",
        "--database-url",
        "postgres://veil@127.0.0.1:1/veil",
    ]));
    assert!(err.contains("database"), "{err}");
    let err = assert_bad_input(&veil(&[
        "prover-worker",
        "--database-url",
        "postgres://veil@127.0.0.1:1/veil",
        "--keys-dir",
        "/nonexistent-veil-keys",
        "--batch-size",
        "1",
        "--depth",
        "8",
    ]));
    assert!(err.contains("pk-B1-D8.bin is missing"), "{err}");
}
