//! The columns the warehouse computed for one rule set's translated expressions.

use std::sync::Arc;

use rhai::Dynamic;

use crate::rules::Expr;

use super::ListField;

/// The columns of one rule set's translated expressions, by expression.
#[derive(Debug, Default)]
pub struct Columns {
    /// By the expression's address; a set has a handful, so a list is searched faster than
    /// a hash map is hashed (this is read for every expression of every account).
    pub(super) by_expr: Vec<(usize, Column)>,
    /// A translated script's results.
    pub(super) script: Option<ScriptColumns>,
}

#[derive(Debug)]
pub enum Column {
    Bool(Vec<bool>),
    /// One bit of a mask per row: conditions come back from the warehouse 64 to a column.
    Bit(Arc<Vec<u64>>, u32),
    /// A column of masks, before it is shared out among its conditions.
    Masks(Vec<u64>),
    Number(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    List(Vec<Vec<String>>),
}

/// A condition's results, row by row.
#[derive(Debug, Clone, Copy)]
pub enum Flags<'a> {
    Bools(&'a [bool]),
    Bits(&'a [u64], u32),
}

#[inline]
pub(super) fn is_set(word: u64, bit: u32) -> bool {
    word >> bit & 1 == 1
}

impl Flags<'_> {
    #[inline]
    pub fn get(self, row: usize) -> bool {
        match self {
            Flags::Bools(v) => v[row],
            Flags::Bits(words, bit) => is_set(words[row], bit),
        }
    }

    pub fn len(self) -> usize {
        match self {
            Flags::Bools(v) => v.len(),
            Flags::Bits(words, _) => words.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl Column {
    pub(super) fn len(&self) -> usize {
        match self {
            Column::Bool(v) => v.len(),
            Column::Bit(words, _) => words.len(),
            Column::Masks(words) => words.len(),
            Column::Number(v) => v.len(),
            Column::Text(v) => v.len(),
            Column::List(v) => v.len(),
        }
    }
}

/// The fields of a translated script's result, as columns.
#[derive(Debug, Default)]
pub(super) struct ScriptColumns {
    pub(super) score: Option<Column>,
    pub(super) grade: Option<Column>,
    pub(super) lists: Vec<(ListField, Column)>,
}

pub(super) fn key(e: &Expr) -> usize {
    e as *const Expr as usize
}

impl Columns {
    pub(super) fn get(&self, e: &Expr) -> Option<&Column> {
        let k = key(e);
        self.by_expr.iter().find(|(x, _)| *x == k).map(|(_, c)| c)
    }

    pub fn condition(&self, e: &Expr, row: usize) -> Option<bool> {
        match self.get(e)? {
            Column::Bool(v) => v.get(row).copied(),
            Column::Bit(words, bit) => Some(is_set(*words.get(row)?, *bit)),
            _ => None,
        }
    }

    pub fn value(&self, e: &Expr, row: usize) -> Option<Dynamic> {
        match self.get(e)? {
            Column::Number(v) => Some(v.get(row)?.map_or(Dynamic::UNIT, Dynamic::from_float)),
            Column::Text(v) => Some(v.get(row)?.as_ref().map_or(Dynamic::UNIT, |s| Dynamic::from(s.clone()))),
            Column::Bool(v) => Some(Dynamic::from_bool(*v.get(row)?)),
            Column::Bit(words, bit) => Some(Dynamic::from_bool(is_set(*words.get(row)?, *bit))),
            Column::List(_) | Column::Masks(_) => None,
        }
    }

    /// The script's result for one row, when the script was translated.
    pub fn script_result(&self, row: usize) -> Option<crate::rules::outcomes::ScriptResult> {
        let s = self.script.as_ref()?;
        let mut result = crate::rules::outcomes::ScriptResult::default();
        if let Some(Column::Number(v)) = &s.score {
            result.score = *v.get(row)?;
        }
        if let Some(Column::Text(v)) = &s.grade {
            result.grade = v.get(row)?.clone();
        }
        for (field, column) in &s.lists {
            let Column::List(v) = column else { return None };
            let items = v.get(row)?.clone();
            match field {
                ListField::Fired => result.fired = items,
                ListField::Reasons => result.reasons = items,
                ListField::Tags => result.tags = items,
            }
        }
        Some(result)
    }

    /// An expression's column, when it was translated.
    pub fn column(&self, e: &Expr) -> Option<&Column> {
        self.get(e)
    }

    /// A condition's column, when it was translated.
    pub fn flags(&self, e: &Expr) -> Option<Flags<'_>> {
        match self.get(e)? {
            Column::Bool(v) => Some(Flags::Bools(v)),
            Column::Bit(words, bit) => Some(Flags::Bits(words, *bit)),
            _ => None,
        }
    }

    /// A number's column, when it was translated.
    pub fn numbers(&self, e: &Expr) -> Option<&[Option<f64>]> {
        match self.get(e)? {
            Column::Number(v) => Some(v),
            _ => None,
        }
    }

    pub fn has(&self, e: &Expr) -> bool {
        self.get(e).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.by_expr.is_empty() && self.script.is_none()
    }
}
