//! `Headers` and `QueryParams`: read-only multi-value mappings.
//!
//! Both keep every pair in arrival order. Indexing returns one value (the
//! first header, like Starlette; the last query value, like a dict built from
//! the pairs), `get_all` returns every value.

use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Shared storage and lookups; `fold_case` makes keys case-insensitive.
pub struct Pairs {
    pub items: Vec<(String, String)>,
    fold_case: bool,
    last_wins: bool,
}

impl Pairs {
    fn key_eq(&self, a: &str, b: &str) -> bool {
        if self.fold_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let mut found = self.items.iter().filter(|(k, _)| self.key_eq(k, key));
        let hit = if self.last_wins {
            found.next_back()
        } else {
            found.next()
        };
        hit.map(|(_, v)| v.as_str())
    }

    fn get_all(&self, key: &str) -> Vec<&str> {
        self.items
            .iter()
            .filter(|(k, _)| self.key_eq(k, key))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for (k, _) in &self.items {
            if !keys.iter().any(|seen| self.key_eq(seen, k)) {
                keys.push(k);
            }
        }
        keys
    }
}

macro_rules! multidict_class {
    ($name:ident, $pyname:literal, $fold:expr, $last:expr) => {
        #[doc = concat!("The `", $pyname, "` mapping exposed to Python.")]
        #[pyclass(module = "cello._cello", name = $pyname, frozen, mapping)]
        pub struct $name(pub Pairs);

        impl $name {
            pub fn new(items: Vec<(String, String)>) -> Self {
                $name(Pairs {
                    items,
                    fold_case: $fold,
                    last_wins: $last,
                })
            }
        }

        #[pymethods]
        impl $name {
            #[new]
            #[pyo3(signature = (items = None))]
            fn py_new(items: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
                let mut pairs = Vec::new();
                if let Some(items) = items {
                    let iterable = match items.cast::<PyDict>() {
                        Ok(d) => d.items().into_any(),
                        Err(_) => items.clone(),
                    };
                    for pair in iterable.try_iter()? {
                        let (k, v): (String, String) = pair?.extract()?;
                        pairs.push((if $fold { k.to_ascii_lowercase() } else { k }, v));
                    }
                }
                Ok(Self::new(pairs))
            }

            fn __getitem__(&self, key: &str) -> PyResult<String> {
                self.0
                    .get(key)
                    .map(str::to_owned)
                    .ok_or_else(|| PyKeyError::new_err(key.to_owned()))
            }

            fn __contains__(&self, key: &str) -> bool {
                self.0.get(key).is_some()
            }

            fn __len__(&self) -> usize {
                self.0.keys().len()
            }

            fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
                PyList::new(slf.py(), slf.get().0.keys())?
                    .into_any()
                    .try_iter()
                    .map(|i| i.into_any())
            }

            #[pyo3(signature = (key, default = None))]
            fn get(
                &self,
                py: Python<'_>,
                key: &str,
                default: Option<Py<PyAny>>,
            ) -> PyResult<Py<PyAny>> {
                match self.0.get(key) {
                    Some(v) => Ok(v.into_pyobject(py)?.into_any().unbind()),
                    None => Ok(default.unwrap_or_else(|| py.None())),
                }
            }

            fn get_all(&self, key: &str) -> Vec<String> {
                self.0.get_all(key).into_iter().map(str::to_owned).collect()
            }

            fn getlist(&self, key: &str) -> Vec<String> {
                self.get_all(key)
            }

            fn keys(&self) -> Vec<String> {
                self.0.keys().into_iter().map(str::to_owned).collect()
            }

            fn values(&self) -> Vec<String> {
                self.0
                    .keys()
                    .into_iter()
                    .filter_map(|k| self.0.get(k).map(str::to_owned))
                    .collect()
            }

            fn items(&self) -> Vec<(String, String)> {
                self.0
                    .keys()
                    .into_iter()
                    .filter_map(|k| self.0.get(k).map(|v| (k.to_owned(), v.to_owned())))
                    .collect()
            }

            /// Every pair, repeats included, in arrival order.
            fn multi_items(&self) -> Vec<(String, String)> {
                self.0.items.clone()
            }

            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let dict = PyDict::new(py);
                for (k, v) in self.items() {
                    dict.set_item(k, v)?;
                }
                Ok(dict)
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
                if let Ok(other) = other.cast::<$name>() {
                    return Ok(other.get().0.items == self.0.items);
                }
                if let Ok(other) = other.cast::<PyDict>() {
                    let mine = self.items();
                    return Ok(other.len() == mine.len()
                        && mine.iter().all(|(k, v)| {
                            other
                                .get_item(k)
                                .ok()
                                .flatten()
                                .and_then(|x| x.extract::<String>().ok())
                                .is_some_and(|x| &x == v)
                        }));
                }
                Ok(false)
            }

            fn __repr__(&self) -> String {
                format!("{}({:?})", $pyname, self.0.items)
            }
        }
    };
}

multidict_class!(Headers, "Headers", true, false);
multidict_class!(QueryParams, "QueryParams", false, true);
