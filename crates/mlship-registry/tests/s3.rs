//! The S3 artifact store against a real S3-compatible server (`.ci/run` starts moto):
//! multipart streaming, content addressing, verification, deletion.

use mlship_registry::{ArtifactStore, Error, S3Artifacts, sha256_hex};

#[test]
fn s3_round_trip_multipart_dedupe_and_delete() {
    let Ok(bucket) = std::env::var("MLSHIP_TEST_S3") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "MLSHIP_TEST_S3 must be set in CI"
        );
        eprintln!("skipped: set MLSHIP_TEST_S3 (and the AWS variables) to run against S3");
        return;
    };
    let s = S3Artifacts::open(&format!("{bucket}/unit-{}", std::process::id())).unwrap();
    // 20 MiB of varied bytes: three parts of a multipart upload.
    let data: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut seen = 0;
    let put = s.put(&mut data.as_slice(), &mut |n| seen = n).unwrap();
    assert_eq!(put.sha256, sha256_hex(&data));
    assert_eq!((put.size, seen), (data.len() as u64, data.len() as u64));
    assert!(s.exists(&put.sha256).unwrap());
    assert_eq!(s.get(&put.sha256).unwrap(), data);
    assert_eq!(s.put(&mut data.as_slice(), &mut |_| {}).unwrap(), put);
    s.delete(&put.sha256).unwrap();
    assert!(!s.exists(&put.sha256).unwrap());
    assert!(matches!(s.get(&put.sha256), Err(Error::MissingArtifact(_))));
}
