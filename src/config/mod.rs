//! What the user wrote: the project file, job files and the located diagnostics that point
//! back into them. Everything else reads its settings from here.

pub mod channels;
pub mod diagnostic;
pub mod job;
pub mod project;
pub mod yaml;
