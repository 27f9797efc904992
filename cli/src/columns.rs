//! Named columns: `--columns` (a table's own names for the four inputs),
//! `--keep`/`--keep-all` (other columns copied into the output), and the
//! kept columns' data as it travels from the reader to the writer.

use super::io::column_name;
use super::CliError;
use gaussdiv::{Field, Param};

/// The four input columns' names in a table: `None` for the default names
/// (`mu1`, `sigma1`/`s1`/`a1`, …, by `--param`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnMap {
    /// Per field in the order μ1, a1, μ2, a2.
    pub names: [Option<String>; 4],
}

impl ColumnMap {
    /// Parse `--columns mu1=NAME,sigma1=NAME,mu2=NAME,sigma2=NAME`: the keys are
    /// `mu1`, `mu2` and the scale columns of `param` (`sigma1`/`s1` for σ,
    /// `var1`, `logstd1`, `logvar1`, `precision1`, and `a1` in any
    /// parameterisation; likewise `…2`). Fields left out keep their default names.
    pub fn parse(spec: &str, param: Param) -> Result<ColumnMap, CliError> {
        let mut map = ColumnMap::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((key, name)) = item.split_once('=') else {
                return Err(CliError::input(format!(
                    "--columns: {item:?} is not FIELD=NAME (e.g. mu1=loc_p)"
                )));
            };
            let (key, name) = (key.trim(), name.trim());
            if name.is_empty() {
                return Err(CliError::input(format!(
                    "--columns: {key}= names no column"
                )));
            }
            let field = field_of_key(key, param).ok_or_else(|| {
                CliError::input(format!(
                    "--columns: unknown field {key:?}: with --param {} the fields are \
                     mu1, {}, mu2, {} (or a1, a2)",
                    param_name(param),
                    param.column(1),
                    param.column(2)
                ))
            })?;
            let slot = map
                .names
                .get_mut(super::io::field_index(field))
                .ok_or_else(|| CliError::input("internal: field index"))?;
            if slot.is_some() {
                return Err(CliError::input(format!(
                    "--columns: field {} is mapped twice",
                    column_name(field, param)
                )));
            }
            *slot = Some(name.to_string());
        }
        Ok(map)
    }

    /// Whether no field is mapped.
    pub fn is_empty(&self) -> bool {
        self.names.iter().all(Option::is_none)
    }

    /// The mapped name of `field`, if any.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.names
            .get(super::io::field_index(field))
            .and_then(|n| n.as_deref())
    }

    /// Find `field` among `names` (a header or a schema): the mapped name
    /// exactly, else the first of the default `aliases`.
    pub fn find(&self, field: Field, aliases: &[&str], names: &[String]) -> Option<usize> {
        match self.get(field) {
            Some(n) => names.iter().position(|h| h == n),
            None => names.iter().position(|h| aliases.contains(&h.as_str())),
        }
    }

    /// How messages name `field`: its canonical name, and the table's own
    /// name beside it when `--columns` mapped it (`loc_p (mu1)`).
    pub fn describe(&self, field: Field, param: Param) -> String {
        match self.get(field) {
            Some(n) => format!("{n} ({})", column_name(field, param)),
            None => column_name(field, param).to_string(),
        }
    }
}

/// The `--param` value that selects `param`.
fn param_name(param: Param) -> &'static str {
    match param {
        Param::Std => "std",
        Param::Var => "var",
        Param::LogStd => "logstd",
        Param::LogVar => "logvar",
        Param::Precision => "precision",
        _ => "…",
    }
}

fn field_of_key(key: &str, param: Param) -> Option<Field> {
    match key {
        "mu1" => Some(Field::Mu1),
        "mu2" => Some(Field::Mu2),
        "a1" => Some(Field::Sigma1),
        "a2" => Some(Field::Sigma2),
        "s1" if param == Param::Std => Some(Field::Sigma1),
        "s2" if param == Param::Std => Some(Field::Sigma2),
        k if k == param.column(1) => Some(Field::Sigma1),
        k if k == param.column(2) => Some(Field::Sigma2),
        _ => None,
    }
}

/// Which other columns to copy into the output (`--keep`, `--keep-all`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeepSpec {
    /// None (the default).
    #[default]
    None,
    /// These columns, in this order.
    List(Vec<String>),
    /// Every column other than the four inputs, in the input's order.
    All,
}

impl KeepSpec {
    /// From `--keep COL,…` and `--keep-all`.
    pub fn parse(keep: Option<&str>, all: bool) -> Result<KeepSpec, CliError> {
        match (keep, all) {
            (Some(_), true) => Err(CliError::input("--keep and --keep-all cannot be combined")),
            (None, true) => Ok(KeepSpec::All),
            (None, false) => Ok(KeepSpec::None),
            (Some(list), false) => {
                let mut names: Vec<String> = Vec::new();
                for n in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !names.iter().any(|m| m == n) {
                        names.push(n.to_string());
                    }
                }
                if names.is_empty() {
                    return Err(CliError::input("--keep names no column"));
                }
                Ok(KeepSpec::List(names))
            }
        }
    }

    /// Whether any column is to be kept (or all).
    pub fn is_some(&self) -> bool {
        !matches!(self, KeepSpec::None)
    }

    /// The indices in `names` of the columns to keep; `inputs` are the four
    /// input columns' indices (left out by [`KeepSpec::All`]).
    pub fn resolve(
        &self,
        names: &[String],
        inputs: &[usize; 4],
        label: &str,
    ) -> Result<Vec<usize>, CliError> {
        match self {
            KeepSpec::None => Ok(Vec::new()),
            KeepSpec::All => Ok((0..names.len()).filter(|i| !inputs.contains(i)).collect()),
            KeepSpec::List(list) => list
                .iter()
                .map(|n| {
                    names.iter().position(|h| h == n).ok_or_else(|| {
                        CliError::input(format!(
                            "{label}: --keep: no column {n:?} (found: {})",
                            names.join(",")
                        ))
                    })
                })
                .collect(),
        }
    }
}

/// A kept column's name and, for Arrow-typed input, its Arrow field (CSV
/// columns are text, written to Arrow and Parquet as UTF-8 strings).
#[derive(Clone, Debug)]
pub struct KeptColumn {
    /// The column's name in the input and the output.
    pub name: String,
    /// Its Arrow field (name, type, nullability); `None` for text.
    #[cfg(feature = "parquet")]
    pub field: Option<arrow_schema::FieldRef>,
}

impl KeptColumn {
    /// A text column (from CSV).
    pub fn text(name: String) -> KeptColumn {
        KeptColumn {
            name,
            #[cfg(feature = "parquet")]
            field: None,
        }
    }
}

/// The text of one kept CSV column over the rows of a chunk.
#[derive(Clone, Debug, Default)]
pub struct TextColumn {
    /// The fields' bytes, one after the other.
    pub bytes: Vec<u8>,
    /// The end of each row's field in `bytes`.
    pub ends: Vec<usize>,
}

impl TextColumn {
    /// Append one row's field.
    pub fn push(&mut self, field: &[u8]) {
        self.bytes.extend_from_slice(field);
        self.ends.push(self.bytes.len());
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Row `i`'s field (empty outside the column).
    pub fn get(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.bytes.get(start..end).unwrap_or(&[])
    }
}

/// The kept columns of one chunk of rows, in `--keep` order.
#[derive(Clone, Debug)]
pub enum Kept {
    /// From CSV: the fields' text.
    Text(Vec<TextColumn>),
    /// From Parquet or Arrow: slices of the input's arrays.
    #[cfg(feature = "parquet")]
    Arrow(Vec<arrow_array::ArrayRef>),
}

/// Append `field` to a CSV line, quoted when it holds a separator, a quote,
/// a line break or leading/trailing blanks (which a reader would trim).
pub fn push_csv_field(buf: &mut Vec<u8>, field: &[u8]) {
    let needs = field
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        || field.first().is_some_and(|b| b.is_ascii_whitespace())
        || field.last().is_some_and(|b| b.is_ascii_whitespace());
    if !needs {
        buf.extend_from_slice(field);
        return;
    }
    buf.push(b'"');
    for &b in field {
        if b == b'"' {
            buf.push(b'"');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_map_parses_keys_by_param() {
        let m = ColumnMap::parse("mu1=a, sigma1=b,mu2=c,s2=d", Param::Std).unwrap();
        assert_eq!(m.get(Field::Mu1), Some("a"));
        assert_eq!(m.get(Field::Sigma2), Some("d"));
        assert_eq!(m.describe(Field::Sigma1, Param::Std), "b (sigma1)");
        let v = ColumnMap::parse("var1=x,a2=y", Param::Var).unwrap();
        assert_eq!(v.get(Field::Sigma1), Some("x"));
        assert_eq!(v.get(Field::Mu1), None);
        for bad in ["sigma1=x", "mu1", "mu1=", "mu1=a,mu1=b", "zeta=q"] {
            assert!(ColumnMap::parse(bad, Param::Var).is_err(), "{bad}");
        }
    }

    #[test]
    fn keep_spec_resolves_and_rejects() {
        let names: Vec<String> = ["id", "mu1", "s1", "mu2", "s2", "k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let inputs = [1, 2, 3, 4];
        assert_eq!(
            KeepSpec::All.resolve(&names, &inputs, "t").unwrap(),
            vec![0, 5]
        );
        let l = KeepSpec::parse(Some("k,id,k"), false).unwrap();
        assert_eq!(l.resolve(&names, &inputs, "t").unwrap(), vec![5, 0]);
        let missing = KeepSpec::parse(Some("nope"), false).unwrap();
        let e = missing.resolve(&names, &inputs, "t").unwrap_err();
        assert!(e.message.contains("\"nope\""), "{}", e.message);
        assert!(KeepSpec::parse(Some("a"), true).is_err());
        assert!(KeepSpec::parse(Some(" , "), false).is_err());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut b = Vec::new();
        for f in [&b"plain"[..], b"a,b", b"say \"hi\"", b" pad", b""] {
            push_csv_field(&mut b, f);
            b.push(b'|');
        }
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\" pad\"||"
        );
        let mut t = TextColumn::default();
        t.push(b"x");
        t.push(b"");
        t.push(b"yz");
        assert_eq!(
            (t.get(0), t.get(1), t.get(2), t.get(3)),
            (&b"x"[..], &b""[..], &b"yz"[..], &b""[..])
        );
    }
}
