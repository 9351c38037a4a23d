//! Where a person may be sent after signing in.

use url::Url;

/// Returns `candidate` resolved to an absolute URL if it is a path on the app URL's origin or
/// a URL on the app's origin or on one of the exact configured origins; `None` otherwise (the
/// caller then uses the app URL).
pub fn check(candidate: &str, app_url: &str, origins: &[String]) -> Option<String> {
    let app = Url::parse(app_url).ok()?;
    if candidate.len() > 2048 || candidate.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let target = if candidate.starts_with('/') {
        // "//host" and "/\host" are scheme-relative to browsers: never a path.
        if candidate.starts_with("//") {
            return None;
        }
        app.join(candidate).ok()?
    } else {
        Url::parse(candidate).ok()?
    };
    if !matches!(target.scheme(), "https" | "http") || !target.username().is_empty() {
        return None;
    }
    if target.password().is_some() {
        return None;
    }
    let origin = target.origin().ascii_serialization();
    let allowed = origin == app.origin().ascii_serialization()
        || origins.iter().any(|o| *o == origin);
    allowed.then(|| target.to_string())
}

#[cfg(test)]
mod tests {
    use super::check;

    const APP: &str = "https://app.acme.test/home";

    #[test]
    fn paths_and_same_origin_urls_are_kept() {
        assert_eq!(check("/reports?x=1", APP, &[]), Some("https://app.acme.test/reports?x=1".into()));
        assert_eq!(check("https://app.acme.test/a", APP, &[]), Some("https://app.acme.test/a".into()));
    }

    #[test]
    fn configured_origins_are_exact() {
        let origins = vec!["https://admin.acme.test".to_owned()];
        assert!(check("https://admin.acme.test/x", APP, &origins).is_some());
        assert!(check("https://admin.acme.test:444/x", APP, &origins).is_none());
        assert!(check("http://admin.acme.test/x", APP, &origins).is_none());
    }

    #[test]
    fn open_redirect_forms_are_refused() {
        for bad in [
            "//evil.test/x",
            "/\\evil.test",
            "https://evil.test/",
            "https://app.acme.test.evil.test/",
            "https://app.acme.test@evil.test/",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user@app.acme.test/",
        ] {
            assert_eq!(check(bad, APP, &[]), None, "{bad}");
        }
    }
}
