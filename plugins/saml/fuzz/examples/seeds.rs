//! Writes the seed corpus of the `acs` target: valid answers and hostile ones, in the three
//! input modes (see `fuzz_targets/acs.rs`).
//!
//! cargo run --example seeds -- seeds/acs

use std::path::PathBuf;

use gatehouse_saml::testing::{self, idp, other, Spec};

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "seeds/acs".into()),
    );
    std::fs::create_dir_all(&dir).expect("seed directory");
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let mut xml_seed = |name: &str, xml: &str| {
        // Mode 1: the decoded document; mode 0: the form value.
        seeds.push((format!("xml-{name}"), [&[1u8][..], xml.as_bytes()].concat()));
        seeds.push((
            format!("form-{name}"),
            [&[0u8][..], testing::encode(xml).as_bytes()].concat(),
        ));
    };

    let valid = testing::response(&Spec::default());
    let assertion_signed = Spec {
        sign_response: false,
        sign_assertion: true,
        ..Spec::default()
    };
    xml_seed("valid-response-signed", &valid);
    xml_seed(
        "valid-assertion-signed",
        &testing::response(&assertion_signed),
    );
    xml_seed("valid-encrypted", &testing::encrypted_response(false));
    xml_seed("valid-4k", &testing::response_of_size(4 * 1024, true));

    // Hostile answers.
    xml_seed(
        "stripped",
        &testing::response(&Spec {
            sign_response: false,
            ..Spec::default()
        }),
    );
    xml_seed(
        "tampered-nameid",
        &valid.replace("ada@example.com", "eve@example.com"),
    );
    xml_seed(
        "comment-nameid",
        &valid.replace("ada@example.com", "ada@example.com<!---->.evil.test"),
    );
    let attacker = testing::response_with(
        &Spec::default(),
        &testing::assertion(&Spec::default(), other()),
        other(),
    );
    let key_info = format!(
        "</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>",
        other().cert_b64()
    );
    xml_seed(
        "attacker-key-in-keyinfo",
        &attacker.replacen("</ds:SignatureValue>", &key_info, 1),
    );
    let evil = testing::assertion(
        &Spec {
            assertion_id: "_evil".into(),
            name_id: "eve@example.com".into(),
            sign_assertion: false,
            ..Spec::default()
        },
        idp(),
    );
    let signed = testing::assertion(&assertion_signed, idp());
    let unsigned = Spec {
        sign_response: false,
        ..Spec::default()
    };
    xml_seed(
        "xsw-evil-first",
        &testing::response_with(&unsigned, &format!("{evil}{signed}"), idp()),
    );
    xml_seed(
        "xsw-extensions",
        &testing::response_with(
            &unsigned,
            &format!("<samlp:Extensions>{signed}</samlp:Extensions>{evil}"),
            idp(),
        ),
    );
    xml_seed(
        "xsw-response-in-extensions",
        &testing::response_with(
            &Spec {
                response_id: "_evilresp".into(),
                ..unsigned.clone()
            },
            &format!("<samlp:Extensions>{valid}</samlp:Extensions>{evil}"),
            idp(),
        ),
    );
    xml_seed(
        "reference-empty-uri",
        &valid.replacen("URI=\"#_resp1\"", "URI=\"\"", 1),
    );
    xml_seed(
        "billion-laughs",
        concat!(
            r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">"#,
            r#"<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>"#,
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol2;</samlp:Response>"#
        ),
    );
    xml_seed(
        "xxe",
        r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#,
    );
    xml_seed(
        "rsa-1_5",
        &testing::encrypted_response(false).replace(
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
            "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
        ),
    );
    seeds.push(("form-garbage".into(), b"\x00%%%not base64%%%".to_vec()));

    // Mode 2: each base answer with an empty edit script, and a few scripts.
    for base in 0u8..5 {
        seeds.push((format!("edit-base{base}"), vec![2, base]));
    }
    // Copy the first assertion-ish element before itself; swap the NameID; insert a comment.
    seeds.push(("edit-copy".into(), vec![2, 0, 3, 40, 0, 0, 10, 0]));
    seeds.push(("edit-swap-nameid".into(), vec![2, 1, 6, 19, 0, 20]));
    seeds.push(("edit-comment".into(), vec![2, 0, 1, 90, 0, 1, 0]));

    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("seed written");
    }
}
