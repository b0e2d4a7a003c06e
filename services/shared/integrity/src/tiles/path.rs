//! Tile coordinates and their C2SP path spelling: `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`.

use std::fmt;

use super::{MAX_TILE_LEVEL, TILE_WIDTH, TileError};

/// Hash tiles at a level, or entry bundles (which sit beside level 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TileKind {
    Hashes { level: u8 },
    Entries,
}

/// One tile or entry bundle: kind, index `N` within its level and width `W` (1..=256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    kind: TileKind,
    index: u64,
    width: u16,
}

impl TileId {
    pub fn new(kind: TileKind, index: u64, width: u16) -> Result<Self, TileError> {
        let level = match kind {
            TileKind::Hashes { level } => level,
            TileKind::Entries => 0,
        };
        if level > MAX_TILE_LEVEL || width == 0 || width > TILE_WIDTH {
            return Err(TileError::BadCoordinates { level, width });
        }
        Ok(Self { kind, index, width })
    }

    pub fn kind(&self) -> TileKind {
        self.kind
    }

    /// Level of a hash tile (`None` for an entry bundle).
    pub fn level(&self) -> Option<u8> {
        match self.kind {
            TileKind::Hashes { level } => Some(level),
            TileKind::Entries => None,
        }
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn is_partial(&self) -> bool {
        self.width < TILE_WIDTH
    }

    /// The entry bundle that sits beside this tile (same index and width).
    pub fn entries(&self) -> Self {
        Self {
            kind: TileKind::Entries,
            ..*self
        }
    }

    /// Path relative to the log prefix (`<prefix>/<tenant>/<zone>/tlog/`).
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_owned(),
        };
        let mut out = format!("tile/{level}/{}", encode_index(self.index));
        if self.is_partial() {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }

    /// Parses a path relative to the log prefix; only the canonical spelling is accepted.
    pub fn parse_path(path: &str) -> Result<Self, TileError> {
        let bad = || TileError::BadPath(path.to_owned());
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (level, rest) = rest.split_once('/').ok_or_else(bad)?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            TileKind::Hashes {
                level: parse_decimal(level).ok_or_else(bad)?,
            }
        };
        let (index_text, width) = match rest.split_once(".p/") {
            Some((index_text, width)) => (index_text, parse_decimal(width).ok_or_else(bad)?),
            None => (rest, TILE_WIDTH),
        };
        let mut index: u64 = 0;
        for segment in index_text.split('/') {
            let digits = segment.strip_prefix('x').unwrap_or(segment);
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let value: u64 = digits.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|i| i.checked_add(value))
                .ok_or_else(bad)?;
        }
        let id = Self::new(kind, index, width).map_err(|_| bad())?;
        if id.path() != path {
            return Err(bad());
        }
        Ok(id)
    }

    pub(crate) fn from_tlog(tile: &tlog_tiles::Tile) -> Result<Self, TileError> {
        let width = u16::try_from(tile.width()).map_err(|_| TileError::BadCoordinates {
            level: tile.level(),
            width: u16::MAX,
        })?;
        Self::new(
            TileKind::Hashes {
                level: tile.level(),
            },
            tile.level_index(),
            width,
        )
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// `1234067` → `x001/x234/067`.
fn encode_index(mut index: u64) -> String {
    let mut out = format!("{:03}", index % 1000);
    while index >= 1000 {
        index /= 1000;
        out = format!("x{:03}/{out}", index % 1000);
    }
    out
}

/// Decimal without sign or leading zeros.
fn parse_decimal<T: std::str::FromStr + ToString>(text: &str) -> Option<T> {
    let value: T = text.parse().ok()?;
    (value.to_string() == text).then_some(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_c2sp_examples_and_parse_back() {
        let t = TileId::new(TileKind::Hashes { level: 4 }, 1_234_067, 256).unwrap();
        assert_eq!(t.path(), "tile/4/x001/x234/067");
        let p = TileId::new(TileKind::Hashes { level: 0 }, 5, 17).unwrap();
        assert_eq!(p.path(), "tile/0/005.p/17");
        assert_eq!(p.entries().path(), "tile/entries/005.p/17");
        for id in [t, p, p.entries()] {
            assert_eq!(TileId::parse_path(&id.path()), Ok(id));
        }
    }

    #[test]
    fn non_canonical_paths_are_rejected() {
        for bad in [
            "tile/0/5",
            "tile/00/005",
            "tile/0/x000/005",
            "tile/0/005.p/256",
            "tile/0/005.p/0",
            "tile/0/005.p/017",
            "tile/64/000",
            "tile/0/005/",
            "tile/entries/x1/005",
            "tiles/0/005",
            "tile/-1/005",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
        ] {
            assert!(TileId::parse_path(bad).is_err(), "{bad}");
        }
    }
}
