//! The SAML ACS check on a 4 KB and a 14 KB response, next to the signature check alone.
//!
//! Run: cargo bench -p gatehouse-saml --features testing --bench saml_acs -- --warm-up-time 1 --measurement-time 5
//!
//! Medians, 2-core shared machine (load ~1.7 from other work), commit b5aa7cb plus this bench:
//!
//! | response (decoded)  | acs/full | signature/verify_signed_xml | signature/reduce |
//! |---------------------|----------|-----------------------------|------------------|
//! | 4 KB (4,225 bytes)  |   427 µs |                      184 µs |           371 µs |
//! | 14 KB (14,337 bytes)|  1978 µs |                      281 µs |          1886 µs |
//!
//! The full check costs 2.3x (4 KB) and 7.0x (14 KB) the bare signature check. Nearly all of
//! that is samael's reduction after xmlsec verifies (superlinear in size); the plugin's own
//! checks around it (base64, strict pre-parse, shape, read-back, conditions, identity) add
//! about 56 µs (4 KB) and 92 µs (14 KB): 1.15x and 1.05x the `reduce` call.
//!
//! - `acs/full`: `acs::consume` on the form, as `finish_login` runs it: base64, the
//!   strict pre-parse and shape checks (IDs, references, transforms, algorithms), samael's
//!   verify-and-reduce (xmlsec), the read-back of the verified content, and the Response,
//!   Assertion and identity checks. The Response is signed (rsa-sha256, RSA-2048).
//! - `signature/verify_signed_xml`: `Crypto::verify_signed_xml` on the decoded XML with the
//!   certificate: libxml2 parse and the xmlsec signature check, nothing else.
//! - `signature/reduce`: `Crypto::reduce_xml_to_signed_with_allowed_algorithms` as the plugin
//!   calls it (verify, then rebuild the document with unsigned content removed).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse_saml::acs::consume;
use gatehouse_saml::testing::{self, idp};
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};

const SIZES: [(&str, usize); 2] = [("4KB", 4 * 1024), ("14KB", 14 * 1024)];

fn acs(c: &mut Criterion) {
    let config = testing::config();
    let expected = testing::expected();
    let certificate = CertificateDer::from(
        idp()
            .cert
            .to_der()
            .expect("certificate DER"),
    );
    let certificates = [certificate.clone()];
    let allowed = [AllowedSignatureAlgorithm::RsaSha256];

    let documents: Vec<(&str, String)> = SIZES
        .iter()
        .map(|(label, bytes)| (*label, testing::response_of_size(*bytes, true)))
        .collect();
    for (label, xml) in &documents {
        let identity = testing::check(&config, xml).expect("the bench response is accepted");
        assert_eq!(identity.subject, "ada@example.com");
        Crypto::verify_signed_xml(xml, &certificate, Some("ID")).expect("the signature verifies");
        eprintln!(
            "{label}: {} bytes decoded, {} bytes base64",
            xml.len(),
            testing::encode(xml).len()
        );
    }

    let mut full = c.benchmark_group("acs/full");
    for (label, xml) in &documents {
        let params = testing::params(testing::encode(xml));
        full.throughput(Throughput::Bytes(xml.len() as u64));
        full.bench_with_input(BenchmarkId::from_parameter(label), &params, |b, params| {
            b.iter(|| consume(black_box(&config), black_box(params), &expected).expect("accepted"))
        });
    }
    full.finish();

    let mut signature = c.benchmark_group("signature");
    for (label, xml) in &documents {
        signature.throughput(Throughput::Bytes(xml.len() as u64));
        signature.bench_with_input(
            BenchmarkId::new("verify_signed_xml", label),
            xml,
            |b, xml| {
                b.iter(|| {
                    Crypto::verify_signed_xml(black_box(xml.as_str()), &certificate, Some("ID"))
                        .expect("verifies")
                })
            },
        );
        signature.bench_with_input(BenchmarkId::new("reduce", label), xml, |b, xml| {
            b.iter(|| {
                Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                    black_box(xml),
                    &certificates,
                    ReduceMode::ValidateAndMarkNoAncestors,
                    Some(&allowed),
                )
                .expect("verifies")
            })
        });
    }
    signature.finish();
}

criterion_group!(benches, acs);
criterion_main!(benches);
