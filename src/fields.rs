//! The fields of a submission and the rules they obey (SPEC §3): ordered, unique names with
//! string values (a repeated name's values joined with `", "`), at most the configured number of
//! fields and name length; and the body errors, each one of the spec's public error codes. The
//! parsers in [`crate::submission::body`] build them; the destinations read them.

use std::collections::HashMap;
use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// The separator placed between the values of a name posted more than once (SPEC §3).
const REPEATED_VALUE_SEPARATOR: &str = ", ";

/// The configurable limits on a parsed body, other than its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most name/value pairs a body may post, not counting removed token fields.
    pub max_fields: usize,
    /// The longest field name allowed, in bytes of UTF-8.
    pub max_name_bytes: usize,
}

/// Why a body was refused; each case is one of the public error codes of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The content type is missing or is not one of the three accepted types.
    #[error("this form only accepts URL-encoded, multipart or JSON bodies")]
    UnsupportedContentType,
    /// A multipart part carries a file with content.
    #[error("this form does not accept file uploads")]
    FileUpload,
    /// The body does not parse, is not valid UTF-8, or is not a flat object of strings.
    #[error("the form data could not be read")]
    Malformed,
    /// The body posts more fields than the configured limit.
    #[error("the form has too many fields")]
    TooManyFields,
    /// A field name is longer than the configured limit.
    #[error("a field name in the form is too long")]
    NameTooLong,
}

/// The fields of a submission: unique names with string values, in order of first appearance.
///
/// A value that exists satisfies the [`Limits`] it was built with. Its `Debug` output shows only
/// the number of fields, because form contents must never reach logs (SPEC §3, privacy).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Fields {
    entries: Vec<(String, String)>,
}

impl Fields {
    /// Builds the fields from posted name/value pairs, in posted order, enforcing `limits`.
    ///
    /// A name posted more than once keeps the position of its first appearance and its values
    /// are joined with `", "` in posted order (SPEC §3).
    ///
    /// # Errors
    ///
    /// [`BodyError::TooManyFields`] when more than `limits.max_fields` pairs are given (each
    /// repetition of a name counts), then [`BodyError::NameTooLong`] when a name is longer than
    /// `limits.max_name_bytes`.
    pub fn from_pairs<I>(pairs: I, limits: &Limits) -> Result<Self, BodyError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let pairs: Vec<(String, String)> = pairs.into_iter().collect();
        if pairs.len() > limits.max_fields {
            return Err(BodyError::TooManyFields);
        }
        if pairs
            .iter()
            .any(|(name, _)| name.len() > limits.max_name_bytes)
        {
            return Err(BodyError::NameTooLong);
        }

        let mut entries: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        let mut positions: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            match positions.get(&name) {
                Some(&position) => {
                    let joined = &mut entries[position].1;
                    joined.push_str(REPEATED_VALUE_SEPARATOR);
                    joined.push_str(&value);
                }
                None => {
                    positions.insert(name.clone(), entries.len());
                    entries.push((name, value));
                }
            }
        }
        Ok(Self { entries })
    }

    /// Returns the fields as `(name, value)` pairs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Returns the number of distinct field names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the value of the field called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns the fields as a JSON object of strings with the field order kept, for the
    /// webhook's `form` object.
    /// Keeps only the fields whose name satisfies `keep`, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|(name, _)| keep(name));
    }
}

/// The webhook's `form` object: one string per field, in posted order.
impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (name, value) in &self.entries {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fields")
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}
