//! Reading a JSON export, streamed: the document's header, each table's rows converted for
//! the target as they come, and the same answer on either dialect for what a file may hold
//! (a row without its id, a key twice in one object, JSON nested as deep as an export can
//! write, a value longer than the contract allows: see `convert_row`). The depth of what is
//! read is bounded here, never by the stack: an export's values are read back whatever
//! their depth up to [`MAX_DEPTH`], and a deeper (or hostile) file is an error, not a crash.

use super::read::{convert_row, Checksum, Event, TableSpec, BATCH};
use super::value::{raw_from_json, Raw};
use crate::error::{excerpt, Error};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use tokio::sync::mpsc::Sender;

/// Streams a JSON export on the calling (dedicated) thread. `tables` are the target's tables;
/// a table or column the target does not have is an error naming it.
pub fn json_reader(
    input: Box<dyn std::io::Read + Send>,
    tables: Vec<TableSpec>,
    tx: Sender<Event>,
) {
    let reader = std::io::BufReader::with_capacity(1 << 20, input);
    let mut de = serde_json::Deserializer::from_reader(reader);
    // The document's levels are fixed, and every value in it is read by [`Strict`], which
    // counts its own depth: serde_json's limit would count both.
    de.disable_recursion_limit();
    let ctx = JsonCtx {
        tables,
        tx: &tx,
        header: std::cell::Cell::new(None),
        seen_tables: std::cell::Cell::new(false),
        failure: std::cell::RefCell::new(None),
    };
    let result = Document(&ctx).deserialize(&mut de).and_then(|()| de.end());
    if let Some(e) = ctx.failure.take() {
        let _ = tx.blocking_send(Event::Failed(e));
    } else if let Err(e) = result {
        if !e.to_string().contains(STOPPED) {
            let _ = tx.blocking_send(Event::Failed(Error::data(format!(
                "the JSON file is malformed or truncated: {e}"
            ))));
        }
    } else if ctx.header.get().is_none() {
        let _ = tx.blocking_send(Event::Failed(Error::data(
            "the JSON file has no schema_version: it was not written by yogaflow-migrate export",
        )));
    } else if !ctx.seen_tables.get() {
        let _ = tx.blocking_send(Event::Failed(Error::data(
            "the JSON file has no tables: it was not written by yogaflow-migrate export, or is truncated",
        )));
    } else {
        let _ = tx.blocking_send(Event::End);
    }
}

/// Marker for "the writer went away": not an error of the file.
const STOPPED: &str = "yogaflow: reader stopped";

struct JsonCtx<'a> {
    tables: Vec<TableSpec>,
    tx: &'a Sender<Event>,
    header: std::cell::Cell<Option<i32>>,
    /// Whether the `tables` object was read to its end.
    seen_tables: std::cell::Cell<bool>,
    /// A data error found while reading (kept whole: serde's errors only carry text).
    failure: std::cell::RefCell<Option<Error>>,
}

impl JsonCtx<'_> {
    fn send<E: serde::de::Error>(&self, event: Event) -> std::result::Result<(), E> {
        self.tx.blocking_send(event).map_err(|_| E::custom(STOPPED))
    }

    fn fail<E: serde::de::Error>(&self, e: Error) -> E {
        let text = e.to_string();
        *self.failure.borrow_mut() = Some(e);
        E::custom(text)
    }
}

struct Document<'c, 'a>(&'c JsonCtx<'a>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a yogaflow-migrate export object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let ctx = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => {
                    let f: String = map.next_value()?;
                    if f != "yogaflow-export" {
                        return Err(ctx.fail(Error::data(format!(
                            "the file's format is '{f}', not yogaflow-export"
                        ))));
                    }
                }
                "format_version" => {
                    let v: u32 = map.next_value()?;
                    if v != 1 {
                        return Err(ctx.fail(Error::data(format!(
                            "format_version {v} is not supported (this binary reads 1)"
                        ))));
                    }
                }
                "schema_version" => {
                    let v: i32 = map.next_value()?;
                    if ctx.header.get().is_some() {
                        return Err(ctx.fail(Error::data(
                            "schema_version appears twice in the JSON file's header",
                        )));
                    }
                    ctx.header.set(Some(v));
                    ctx.send(Event::Header { schema_version: v })?;
                }
                "id_high_water" => {
                    let marks: std::collections::BTreeMap<String, i64> = map.next_value()?;
                    ctx.send(Event::HighWater(marks.into_iter().collect()))?;
                }
                "tables" => {
                    if ctx.header.get().is_none() {
                        return Err(ctx.fail(Error::data(
                            "schema_version must come before tables in the JSON file",
                        )));
                    }
                    map.next_value_seed(Tables(ctx))?;
                }
                _ => {
                    map.next_value_seed(Strict::new(&std::cell::RefCell::new(None)))?;
                }
            }
        }
        Ok(())
    }
}

struct Tables<'c, 'a>(&'c JsonCtx<'a>);

impl<'de> DeserializeSeed<'de> for Tables<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Tables<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of tables")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let ctx = self.0;
        let mut seen: Vec<String> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let Some(spec) = ctx.tables.iter().find(|t| t.name == name).cloned() else {
                return Err(ctx.fail(Error::data(format!(
                    "table {} in the JSON file does not exist in the target database",
                    excerpt(&name)
                ))));
            };
            if seen.contains(&name) {
                return Err(ctx.fail(Error::data(format!(
                    "table {name} appears twice in the JSON file"
                ))));
            }
            seen.push(name.clone());
            ctx.send(Event::Table(spec.clone()))?;
            let sum = map.next_value_seed(Rows { ctx, spec: &spec })?;
            let (rows, checksum) = sum.result();
            ctx.send(Event::TableDone { rows, checksum })?;
        }
        // An export holds every table of its schema version, empty ones too: a file without
        // one is truncated or foreign, and loading it with --replace would empty that table.
        let missing: Vec<&str> = ctx
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .filter(|t| !seen.iter().any(|s| s == t))
            .collect();
        if !missing.is_empty() {
            return Err(ctx.fail(Error::data(format!(
                "the JSON file lacks table(s) {}: an export holds every table of its schema \
                 version, so this one is truncated or was not written by yogaflow-migrate \
                 export; nothing was written",
                missing.join(", ")
            ))));
        }
        ctx.seen_tables.set(true);
        Ok(())
    }
}

struct Rows<'c, 'a, 's> {
    ctx: &'c JsonCtx<'a>,
    spec: &'s TableSpec,
}

impl<'de> DeserializeSeed<'de> for Rows<'_, '_, '_> {
    type Value = Checksum;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Checksum, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_, '_, '_> {
    type Value = Checksum;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> std::result::Result<Checksum, S::Error> {
        let mut batch = Vec::with_capacity(BATCH);
        let mut sum = Checksum::new(self.spec.checksum);
        let mut row = 0u64;
        while let Some(raws) = seq.next_element_seed(RowSeed {
            ctx: self.ctx,
            spec: self.spec,
            row: row + 1,
        })? {
            row += 1;
            // JSON values are gone once converted: keep the row for the error message.
            let copy = raws.clone();
            let values = convert_row(self.spec, row, raws, &|i| copy[i].clone())
                .map_err(|e| self.ctx.fail::<S::Error>(e))?;
            sum.add(&values);
            batch.push(values);
            if batch.len() == BATCH {
                self.ctx.send(Event::Rows(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH),
                )))?;
            }
        }
        self.ctx.send(Event::Rows(batch))?;
        Ok(sum)
    }
}

struct RowSeed<'c, 'a, 's> {
    ctx: &'c JsonCtx<'a>,
    spec: &'s TableSpec,
    /// Its position in the table, from 1, for messages.
    row: u64,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_, '_> {
    type Value = Vec<Raw>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Vec<Raw>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_, '_> {
    type Value = Vec<Raw>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<Raw>, A::Error> {
        let (spec, row) = (self.spec, self.row);
        let mut raws = vec![Raw::Null; spec.columns.len()];
        let mut seen = vec![false; spec.columns.len()];
        while let Some(column) = map.next_key::<String>()? {
            let Some(i) = spec.columns.iter().position(|c| *c == column) else {
                return Err(self.ctx.fail(Error::data(format!(
                    "table {}: column {} in the JSON file does not exist in the target database",
                    spec.name,
                    excerpt(&column)
                ))));
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(self.ctx.fail(Error::data(format!(
                    "table {}, row {row}: column {column} appears twice in the row's object \
                     (which value was meant cannot be told); nothing was written",
                    spec.name
                ))));
            }
            let refused = std::cell::RefCell::new(None);
            let v =
                map.next_value_seed(Strict::new(&refused))
                    .map_err(|e| match refused.take() {
                        // A refusal of the value's own: named by row and column. (A file that
                        // is cut or malformed is said so as such, by `json_reader`.)
                        Some(why) => self.ctx.fail::<A::Error>(Error::data(format!(
                            "table {}, row {row}, column {column}: {why}; nothing was written",
                            spec.name
                        ))),
                        None => e,
                    })?;
            raws[i] = raw_from_json(v, spec.target_kinds[i]).map_err(|why| {
                self.ctx.fail::<A::Error>(Error::data(format!(
                    "table {}, row {row}, column {column}: {why}",
                    spec.name
                )))
            })?;
        }
        Ok(raws)
    }
}

/// How deep a value may nest: as deep as serde_json reads a JSON value, and so as deep as
/// `export` can have read one from either database to write it.
pub const MAX_DEPTH: usize = 128;

/// A JSON value read whole, as `serde_json::Value`, but strictly: an object holding a key twice
/// is refused (serde_json would keep the last value silently, and so would PostgreSQL's
/// jsonb), and nesting deeper than [`MAX_DEPTH`] is refused by count, not by the stack.
struct Strict<'r> {
    depth: usize,
    /// Why the value was refused, when it was (serde's errors only carry text).
    refused: &'r std::cell::RefCell<Option<String>>,
}

impl<'r> Strict<'r> {
    fn new(refused: &'r std::cell::RefCell<Option<String>>) -> Strict<'r> {
        Strict { depth: 0, refused }
    }

    fn refuse<E: serde::de::Error>(&self, why: String) -> E {
        let e = E::custom(&why);
        *self.refused.borrow_mut() = Some(why);
        e
    }

    fn deeper<E: serde::de::Error>(&self) -> std::result::Result<Strict<'r>, E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.refuse(format!(
                "JSON nested deeper than {MAX_DEPTH} levels, more than an export holds"
            )));
        }
        Ok(Strict {
            depth: self.depth + 1,
            refused: self.refused,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = serde_json::Value;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<serde_json::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<serde_json::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> std::result::Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<S: SeqAccess<'de>>(
        self,
        mut seq: S,
    ) -> std::result::Result<serde_json::Value, S::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.deeper()?)? {
            out.push(v);
        }
        Ok(serde_json::Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<serde_json::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(self.refuse(format!(
                    "key {} appears twice in one JSON object (which value was meant cannot \
                     be told)",
                    excerpt(&key)
                )));
            }
            let v = map.next_value_seed(self.deeper()?)?;
            out.insert(key, v);
        }
        Ok(serde_json::Value::Object(out))
    }
}
