//! The secondary may keep the deployment under another key prefix than the primary
//! (`s3://a/rainlogs` and `s3://b/archive/rainlogs`); below the prefix the layout is the same,
//! so each bucket verifies on its own with its own prefix. Keys are named as the primary names
//! them and translated for the secondary here.

use crate::error::StoreError;
use crate::key::ObjectKey;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rebase {
    primary: String,
    secondary: String,
}

impl Rebase {
    /// Prefixes as configured (`rainlogs`, or empty for the bucket's root).
    pub(crate) fn new(primary: &str, secondary: &str) -> Self {
        Self {
            primary: as_dir(primary),
            secondary: as_dir(secondary),
        }
    }

    /// `name` (a key or a listing prefix, named as on the primary) as the secondary names it.
    /// Names outside the primary's prefix are the same on both.
    pub(crate) fn primary_to_secondary(&self, name: &str) -> String {
        match name.strip_prefix(&self.primary) {
            Some(rest) if self.primary != self.secondary => format!("{}{rest}", self.secondary),
            _ => name.to_owned(),
        }
    }

    /// A key the secondary listed, named as on the primary.
    pub(crate) fn secondary_to_primary(&self, name: &str) -> String {
        match name.strip_prefix(&self.secondary) {
            Some(rest) if self.primary != self.secondary => format!("{}{rest}", self.primary),
            _ => name.to_owned(),
        }
    }

    pub(crate) fn key_to_secondary(&self, key: &ObjectKey) -> Result<ObjectKey, StoreError> {
        ObjectKey::new(self.primary_to_secondary(key.as_str()))
    }
}

fn as_dir(prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

#[cfg(test)]
mod tests {
    use super::Rebase;

    #[test]
    fn keys_move_between_prefixes_and_back() {
        let rebase = Rebase::new("rainlogs", "archive/eu");
        assert_eq!(
            rebase.primary_to_secondary("rainlogs/v1/t/z/tlog/checkpoint"),
            "archive/eu/v1/t/z/tlog/checkpoint"
        );
        assert_eq!(
            rebase.secondary_to_primary("archive/eu/v1/t/z/tlog/checkpoint"),
            "rainlogs/v1/t/z/tlog/checkpoint"
        );
        // A directory named like the prefix but longer is not under it.
        assert_eq!(rebase.primary_to_secondary("rainlogsx/a"), "rainlogsx/a");
        let root = Rebase::new("", "replica");
        assert_eq!(root.primary_to_secondary("v1/a"), "replica/v1/a");
        assert_eq!(root.secondary_to_primary("replica/v1/a"), "v1/a");
        let same = Rebase::new("p", "p/");
        assert_eq!(same.primary_to_secondary("p/a"), "p/a");
    }
}
