pub use data;
pub use model;
