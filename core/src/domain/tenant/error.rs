/// A tenant command that breaks a business rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// A tenant with this slug already exists.
    #[error("a tenant with this slug already exists")]
    AlreadyExists,
    /// No tenant with this slug.
    #[error("no such tenant")]
    NotFound,
    /// The tenant has no connection with this id.
    #[error("no such connection")]
    ConnectionNotFound,
}
