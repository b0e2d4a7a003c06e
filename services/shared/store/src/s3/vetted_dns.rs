//! DNS for buckets a tenant names: every lookup is vetted by the address policy, so a name that
//! later resolves to a private address (DNS rebinding) is refused at connect time, not only at
//! onboarding. IP literals never reach a resolver; [`check_endpoint`] vets those.

use std::net::IpAddr;

use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use rainlogs_outbound::AddressPolicy;

use crate::error::StoreError;

#[derive(Clone, Debug)]
pub(super) struct VettedDns {
    pub policy: AddressPolicy,
}

impl ResolveDns for VettedDns {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        let policy = self.policy;
        DnsFuture::new(async move {
            policy
                .resolve(name)
                .await
                .map_err(|e| ResolveDnsError::new(e.to_string()))
        })
    }
}

/// An endpoint whose host is an IP literal must be one the policy permits.
pub(super) fn check_endpoint(policy: AddressPolicy, endpoint: &str) -> Result<(), StoreError> {
    let after_scheme = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    match host.parse::<IpAddr>() {
        Ok(address) if !policy.permits(address) => Err(StoreError::Config(format!(
            "endpoint {endpoint} is at {address}, which is not a public address"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_endpoints_are_vetted() {
        let public = AddressPolicy::PublicOnly;
        for refused in [
            "http://127.0.0.1:9000",
            "https://[::1]:443/x",
            "http://169.254.169.254",
            "10.1.2.3:80",
        ] {
            assert!(check_endpoint(public, refused).is_err(), "{refused}");
        }
        for allowed in ["https://s3.example.eu", "https://1.1.1.1:8443"] {
            assert!(check_endpoint(public, allowed).is_ok(), "{allowed}");
        }
        assert!(check_endpoint(AddressPolicy::AllowPrivate, "http://127.0.0.1:9000").is_ok());
    }
}
