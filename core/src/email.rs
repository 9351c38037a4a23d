//! Email addresses as they decide single sign-on: an address is accepted for a connection only
//! when its domain is one of the connection's allowed domains.

/// Why an email was refused for sign-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Not exactly one `@`, an empty local part, or an unusable domain.
    #[error("email address is malformed")]
    Malformed,
    /// The domain is not one of the allowed domains.
    #[error("email domain {0:?} is not allowed for this connection")]
    DomainNotAllowed(String),
}

/// Lowercases, drops one trailing dot and converts to ASCII (IDNA, UTS #46) a domain name.
/// Returns `None` for a name that is not a valid domain.
pub fn normalize_domain(domain: &str) -> Option<String> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() || domain.ends_with('.') {
        return None;
    }
    let ascii = idna::domain_to_ascii_strict(domain).ok()?;
    if ascii.is_empty() || ascii.split('.').any(str::is_empty) {
        return None;
    }
    Some(ascii)
}

/// Checks `email` against `allowed` (already normalised domains) and returns the domain that
/// matched. Subdomains of an allowed domain match only when `allow_subdomains` is set.
pub fn check_domain(
    email: &str,
    allowed: &[String],
    allow_subdomains: bool,
) -> Result<String, EmailError> {
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(EmailError::Malformed);
    };
    if local.is_empty() || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailError::Malformed);
    }
    let domain = normalize_domain(domain).ok_or(EmailError::Malformed)?;
    let matches = allowed.iter().any(|candidate| {
        domain == *candidate
            || (allow_subdomains
                && domain.len() > candidate.len()
                && domain.ends_with(candidate.as_str())
                && domain.as_bytes()[domain.len() - candidate.len() - 1] == b'.')
    });
    if matches {
        Ok(domain)
    } else {
        Err(EmailError::DomainNotAllowed(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        vec!["good.test".to_owned()]
    }

    #[test]
    fn exact_domain_is_accepted_after_normalisation() {
        assert_eq!(check_domain("a@good.test", &allowed(), false), Ok("good.test".into()));
        assert_eq!(check_domain("a@GOOD.Test.", &allowed(), false), Ok("good.test".into()));
    }

    #[test]
    fn look_alikes_are_refused() {
        assert_eq!(check_domain("a@evil.test@good.test", &allowed(), false), Err(EmailError::Malformed));
        assert!(matches!(
            check_domain("a@good.test.evil.test", &allowed(), false),
            Err(EmailError::DomainNotAllowed(_))
        ));
        assert!(matches!(
            check_domain("a@evilgood.test", &allowed(), true),
            Err(EmailError::DomainNotAllowed(_))
        ));
        assert_eq!(check_domain("good.test", &allowed(), false), Err(EmailError::Malformed));
        assert_eq!(check_domain("@good.test", &allowed(), false), Err(EmailError::Malformed));
        assert_eq!(check_domain("a@good.test..", &allowed(), false), Err(EmailError::Malformed));
        assert_eq!(check_domain("a b@good.test", &allowed(), false), Err(EmailError::Malformed));
    }

    #[test]
    fn subdomains_only_when_allowed() {
        assert!(check_domain("a@eu.good.test", &allowed(), false).is_err());
        assert_eq!(check_domain("a@eu.good.test", &allowed(), true), Ok("eu.good.test".into()));
    }

    #[test]
    fn unicode_domains_compare_in_ascii_form() {
        let allowed = vec![normalize_domain("bücher.test").unwrap()];
        assert_eq!(allowed[0], "xn--bcher-kva.test");
        assert!(check_domain("a@BÜCHER.test", &allowed, false).is_ok());
        assert!(check_domain("a@xn--bcher-kva.test", &allowed, false).is_ok());
    }
}
