//! Reading and re-signing captured SAML answers in hostile-input tests: tolerant string
//! surgery on the IdP's XML, and re-signing with the `xmlsec1` and `openssl` command-line tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::saml::{xml_attribute, SamlIdp};

/// The end (exclusive, after `>`) of the tag starting at `start`, skipping quoted values.
pub fn tag_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return i + 1,
            None => {}
        }
    }
    bytes.len()
}

/// Byte range (start of the start tag, end of the end tag) of the first element with this
/// local name at or after `from`. Elements of that name must not nest (true for Signature,
/// Assertion, NameID, Issuer).
pub fn element_range(xml: &str, local: &str, from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(lt) = xml[i..].find('<').map(|p| p + i) {
        let end = tag_end(xml, lt);
        let name: String = xml[lt + 1..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        let is_start = !matches!(xml.as_bytes().get(lt + 1), Some(b'/' | b'!' | b'?'));
        if is_start && name.rsplit(':').next() == Some(local) {
            if xml[lt..end].ends_with("/>") {
                return Some((lt, end));
            }
            let close = format!("</{name}>");
            let close_at = xml[end..].find(&close)? + end;
            return Some((lt, close_at + close.len()));
        }
        i = lt + 1;
    }
    None
}

pub fn element<'a>(xml: &'a str, local: &str) -> &'a str {
    let (start, end) =
        element_range(xml, local, 0).unwrap_or_else(|| panic!("no {local} element in {xml}"));
    &xml[start..end]
}

pub fn count_elements(xml: &str, local: &str) -> usize {
    let mut count = 0;
    let mut from = 0;
    while let Some((start, _)) = element_range(xml, local, from) {
        count += 1;
        from = start + 1;
    }
    count
}

/// Removes every `Signature` element (whatever its prefix).
pub fn strip_signatures(xml: &str) -> String {
    let mut out = xml.to_string();
    while let Some((start, end)) = element_range(&out, "Signature", 0) {
        out.replace_range(start..end, "");
    }
    assert_eq!(count_elements(&out, "Signature"), 0, "{out}");
    out
}

/// The IdP's private key and certificate files: the fixture makes them with openssl in a
/// `gatehouse-test-saml-idp-*` temporary dir (`idp-key.pem`, `idp-cert.pem`) and does not
/// expose the key; find the dir whose certificate is the shared IdP's.
pub fn idp_key_files(idp: &SamlIdp) -> (PathBuf, PathBuf) {
    let temp = std::env::temp_dir();
    let entries =
        std::fs::read_dir(&temp).unwrap_or_else(|e| panic!("read {}: {e}", temp.display()));
    for entry in entries.flatten() {
        let dir = entry.path();
        let named = entry
            .file_name()
            .to_string_lossy()
            .starts_with("gatehouse-test-saml-idp-");
        if !named || !dir.is_dir() {
            continue;
        }
        let cert = dir.join("idp-cert.pem");
        let key = dir.join("idp-key.pem");
        if std::fs::read_to_string(&cert).is_ok_and(|pem| pem == idp.certificate_pem())
            && key.exists()
        {
            return (key, cert);
        }
    }
    panic!(
        "the shared SAML IdP's key (idp-key.pem next to its certificate) was not found under {}",
        temp.display()
    );
}

/// An empty enveloped `ds:Signature` over the element with this ID: exclusive c14n, these
/// algorithms, and `<ds:X509Data/>` for xmlsec to fill with the signing certificate.
pub fn signature_template(id: &str, signature_method: &str, digest_method: &str) -> String {
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="{sm}"/>"#,
            r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="{dm}"/><ds:DigestValue></ds:DigestValue>"#,
            r#"</ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>"#,
            r#"<ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"#
        ),
        sm = signature_method,
        dm = digest_method,
        id = id
    )
}

pub fn run(command: &mut Command, what: &str) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{what} failed ({}): {text}",
        output.status
    );
    text
}

/// Strips every signature of the genuine Response and signs the Response (only) again with
/// this key and these algorithms, with the certificate in KeyInfo. Checks with
/// `xmlsec1 --verify` against `cert` that the result is a valid signature, so a refusal can
/// only be about who signed or how.
pub fn resign_response(
    xml: &str,
    key: &Path,
    cert: &Path,
    signature_method: &str,
    digest_method: &str,
) -> String {
    let unsigned = strip_signatures(xml);
    let response_id = xml_attribute(&unsigned, "Response", "ID").expect("Response ID");
    // SAML Core §3.2.2: the Signature follows the Response's Issuer.
    let (_, issuer_end) = element_range(&unsigned, "Issuer", 0).expect("Response Issuer");
    let template = format!(
        "{}{}{}",
        &unsigned[..issuer_end],
        signature_template(&response_id, signature_method, digest_method),
        &unsigned[issuer_end..]
    );
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-test-saml-hostile-")
        .tempdir()
        .expect("temporary dir");
    let template_path = dir.path().join("template.xml");
    let signed_path = dir.path().join("signed.xml");
    std::fs::write(&template_path, &template).expect("write the template");
    run(
        Command::new("xmlsec1")
            .arg("--sign")
            .arg("--privkey-pem")
            .arg(format!("{},{}", key.display(), cert.display()))
            .args([
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:protocol:Response",
            ])
            .arg("--output")
            .arg(&signed_path)
            .arg(&template_path),
        "xmlsec1 --sign (is xmlsec1 installed?)",
    );
    let signed = std::fs::read_to_string(&signed_path).expect("read the signed response");
    let verified = run(
        Command::new("xmlsec1")
            .arg("--verify")
            .arg("--pubkey-cert-pem")
            .arg(cert)
            .args([
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:protocol:Response",
            ])
            .arg(&signed_path),
        "xmlsec1 --verify of the re-signed response",
    );
    assert!(verified.contains("OK"), "xmlsec1 --verify: {verified}");
    assert_eq!(count_elements(&signed, "Signature"), 1, "{signed}");
    assert_eq!(
        count_elements(&signed, "X509Certificate"),
        1,
        "xmlsec should put the signing certificate in KeyInfo: {signed}"
    );
    signed
}

/// Whether `xmlsec1 --verify` accepts the first signature of this Response with this
/// certificate (IDs of Responses and Assertions registered).
pub fn xmlsec_verifies(xml: &str, cert_pem: &str) -> bool {
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-test-saml-hostile-")
        .tempdir()
        .expect("temporary dir");
    let xml_path = dir.path().join("response.xml");
    let cert_path = dir.path().join("cert.pem");
    std::fs::write(&xml_path, xml).expect("write the response");
    std::fs::write(&cert_path, cert_pem).expect("write the certificate");
    let output = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(&cert_path)
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:Response",
        ])
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        ])
        .arg(&xml_path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run xmlsec1 --verify: {e}"));
    output.status.success()
}
