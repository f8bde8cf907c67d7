//! What a model is and how it learns: classes, features, Burn networks, training,
//! evaluation, model cards and the model registry. Takes arrays, never raster files.
