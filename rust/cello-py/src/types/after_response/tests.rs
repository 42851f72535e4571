use super::*;

fn callable<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyAny> {
    let module = PyModule::from_code(py, c"def f():\n    pass\n", c"cb.py", c"cb").unwrap();
    let f = module.getattr("f").unwrap();
    f.setattr("__name__", name).unwrap();
    f
}

fn names(py: Python<'_>, callbacks: &Callbacks) -> Vec<String> {
    callbacks
        .callbacks
        .iter()
        .map(|c| c.bind(py).getattr("__name__").unwrap().extract().unwrap())
        .collect()
}

#[test]
fn a_request_that_registers_nothing_gives_nothing_and_stays_open() {
    let slot = Mutex::new(AfterSlot::Empty);
    assert!(take(&slot).is_none());
    assert!(matches!(*slot.lock().unwrap(), AfterSlot::Empty));
}

#[test]
fn callbacks_come_back_in_registration_order_once() {
    Python::initialize();
    Python::attach(|py| {
        let slot = Mutex::new(AfterSlot::Empty);
        register(py, &slot, callable(py, "first")).unwrap();
        register(py, &slot, callable(py, "second")).unwrap();
        let taken = take(&slot).expect("two callbacks were registered");
        assert_eq!(names(py, &taken), ["first", "second"]);
        assert!(take(&slot).is_none());
    });
}

#[test]
fn registering_after_the_response_went_out_is_refused() {
    Python::initialize();
    Python::attach(|py| {
        let slot = Mutex::new(AfterSlot::Empty);
        register(py, &slot, callable(py, "early")).unwrap();
        drop(take(&slot));
        let err = register(py, &slot, callable(py, "late")).unwrap_err();
        assert!(err.is_instance_of::<PyRuntimeError>(py));
        assert!(err.to_string().contains("already been sent"), "{err}");
    });
}

#[test]
fn a_callback_must_be_callable() {
    Python::initialize();
    Python::attach(|py| {
        let slot = Mutex::new(AfterSlot::Empty);
        let err = register(py, &slot, 3_i32.into_pyobject(py).unwrap().into_any()).unwrap_err();
        assert!(err.is_instance_of::<PyTypeError>(py));
        assert_eq!(
            err.value(py).to_string(),
            "_after_response() takes a callable, not int"
        );
        assert!(matches!(*slot.lock().unwrap(), AfterSlot::Empty));
    });
}

#[test]
fn the_callbacks_keep_a_copy_of_the_registering_context() {
    Python::initialize();
    Python::attach(|py| {
        let slot = Mutex::new(AfterSlot::Empty);
        register(py, &slot, callable(py, "f")).unwrap();
        let taken = take(&slot).unwrap();
        let context_type = py
            .import("contextvars")
            .unwrap()
            .getattr("Context")
            .unwrap();
        assert!(taken.context.bind(py).is_instance(&context_type).unwrap());
    });
}
