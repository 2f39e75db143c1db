//! The audit report: one self-contained file (HTML, Markdown or JSON) made
//! from an [`crate::inventory::InventorySnapshot`]. Reads the inventory only.
