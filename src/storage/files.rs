//! The names of a database's numbered files (docs/format.md, "The database
//! directory"): segments, heads and dictionary indexes take their numbers
//! from one sequence and are named `PREFIX` + 16 decimal digits + `SUFFIX`.
//! One registry, so that writers, recovery and `verify` agree on them.

/// A kind of numbered file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NumberedFile {
    prefix: &'static str,
    suffix: &'static str,
}

impl NumberedFile {
    /// Segment files, `seg-N.tseg`.
    pub(crate) const SEGMENT: NumberedFile = NumberedFile {
        prefix: "seg-",
        suffix: ".tseg",
    };
    /// Head files, `head-N.thead` ([HD1]).
    pub(crate) const HEAD: NumberedFile = NumberedFile {
        prefix: "head-",
        suffix: ".thead",
    };
    /// Dictionary indexes, `idx-N.tdix` ([DX1]).
    pub(crate) const INDEX: NumberedFile = NumberedFile {
        prefix: "idx-",
        suffix: ".tdix",
    };

    /// The name of file `number` of this kind.
    pub(crate) fn name(self, number: u64) -> String {
        format!("{}{number:016}{}", self.prefix, self.suffix)
    }

    /// The number in `name`, if it names a file of this kind: exactly 16
    /// decimal digits between the prefix and the suffix ([M8]).
    pub(crate) fn parse(self, name: &str) -> Option<u64> {
        let digits = name.strip_prefix(self.prefix)?.strip_suffix(self.suffix)?;
        if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for kind in [
            NumberedFile::SEGMENT,
            NumberedFile::HEAD,
            NumberedFile::INDEX,
        ] {
            for n in [0, 7, 9_999_999_999_999_999] {
                assert_eq!(kind.parse(&kind.name(n)), Some(n));
            }
            assert_eq!(
                kind.parse(&format!("{}12{}", kind.prefix, kind.suffix)),
                None
            );
            assert_eq!(kind.parse(&format!("{}{}.tmp", kind.name(3), "")), None);
        }
        assert_eq!(NumberedFile::SEGMENT.name(31), "seg-0000000000000031.tseg");
        assert_eq!(NumberedFile::HEAD.parse("seg-0000000000000031.tseg"), None);
        assert_eq!(NumberedFile::INDEX.parse("idx-000000000000003a.tdix"), None);
    }
}
