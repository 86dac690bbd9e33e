//! The executor for the worker's futures: each task is polled at once by
//! whatever wakes it, never from a queue shared with other requests.
//!
//! Why not `wasm-bindgen-futures` (which `#[worker::event(fetch)]` and
//! `Context::wait_until` use): it keeps one run queue for the isolate and
//! drains it in a microtask, so every await costs a microtask hop and a
//! pass through the queue, and a drain queued in one request's turn may
//! poll another request's task, whose I/O workerd then refuses. Polling in
//! the waker instead cut the hit path's CPU per request from 1,710 to
//! 1,261 µs, side by side in one run of `bench/run.js` (`BASELINE=`).
//!
//! Every wake-up comes from a JS callback: the reaction to a promise the
//! task's own request made (its fetches, cache and KV calls, stream writes
//! and timers), which workerd runs in that request's context. Nothing wakes
//! a task from another request: a coalesced waiter polls a flag on its own
//! timers ([`crate::platform::Background::signal`]). A wake-up during the
//! task's own poll polls it again when that poll returns. Tasks spawned
//! while a task is polled are first polled when it returns, in the same
//! turn, once the spawner's borrows are released.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, RawWaker, RawWakerVTable, Waker};
use wasm_bindgen::{JsCast, JsValue};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Polling,
    /// Woken while being polled: poll again.
    Woken,
    /// Cancelled while being polled: dropped when the poll returns.
    Cancelled,
    Done,
}

struct Task {
    future: RefCell<Option<Pin<Box<dyn Future<Output = ()>>>>>,
    state: Cell<State>,
    /// The signal of the request the task works for, until it is listened to.
    client_gone: RefCell<Option<web_sys::AbortSignal>>,
    /// How many times it has waited (up to 2).
    waits: Cell<u8>,
}

thread_local! {
    /// Tasks spawned during a poll, polled once the poll returns.
    static SPAWNED: RefCell<Vec<Rc<Task>>> = const { RefCell::new(Vec::new()) };
    /// Polls in progress on the stack (tasks polled by a wake-up raised
    /// inside another task's poll nest).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// A promise of `future`'s outcome, for an event handler or `waitUntil`.
pub fn promise(
    future: impl Future<Output = Result<JsValue, JsValue>> + 'static,
) -> js_sys::Promise {
    let (promise, task) = settled_by(future);
    start(task);
    promise
}

/// [`promise`], for a request whose client may go away (`signal`, the
/// incoming request's, with the `enable_request_signal` flag): its task is
/// dropped then. workerd never settles the I/O of a cancelled request, so
/// without this its future would wait forever, holding what it holds: the
/// bytes of a page being composed, its purge read, its flight.
pub fn promise_until_aborted(
    future: impl Future<Output = Result<JsValue, JsValue>> + 'static,
    signal: &web_sys::AbortSignal,
) -> js_sys::Promise {
    let (promise, task) = settled_by(future);
    task.client_gone.replace(Some(signal.clone()));
    start(task);
    promise
}

/// Listens for the task's client going away from the task's second wait
/// on. A hit waits once (for the Cache API) and ends before a listener
/// could matter: a listener and its closure were about 2% of a hit's CPU
/// in a profile. A client gone before the second wait is seen then.
fn watch(task: &Rc<Task>) {
    let waits = task.waits.get().saturating_add(1);
    task.waits.set(waits);
    if waits < 2 {
        return;
    }
    let Some(signal) = task.client_gone.take() else {
        return;
    };
    if signal.aborted() {
        return cancel(task);
    }
    let weak = Rc::downgrade(task);
    let abort = wasm_bindgen::closure::Closure::once_into_js(move || {
        if let Some(task) = weak.upgrade() {
            cancel(&task);
        }
    });
    let _ = signal.add_event_listener_with_callback("abort", abort.unchecked_ref());
}

/// A task for `future`, and the promise it settles.
fn settled_by(
    future: impl Future<Output = Result<JsValue, JsValue>> + 'static,
) -> (js_sys::Promise, Rc<Task>) {
    let mut settle = None;
    let promise = js_sys::Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
    let (resolve, reject) = settle.expect("the executor runs synchronously");
    let task = Rc::new(Task {
        future: RefCell::new(Some(Box::pin(async move {
            let _ = match future.await {
                Ok(value) => resolve.call1(&JsValue::UNDEFINED, &value),
                Err(error) => reject.call1(&JsValue::UNDEFINED, &error),
            };
        }))),
        state: Cell::new(State::Idle),
        client_gone: RefCell::new(None),
        waits: Cell::new(0),
    });
    (promise, task)
}

/// Polls a new task now if nothing is being polled (an event handler's
/// entry), else when the current poll returns.
fn start(task: Rc<Task>) {
    if DEPTH.get() == 0 {
        run(&task);
    } else {
        SPAWNED.with_borrow_mut(|spawned| spawned.push(task));
    }
}

/// Drops a task's future unpolled: it will never be polled again. A task
/// being polled is dropped when its poll returns.
fn cancel(task: &Rc<Task>) {
    match task.state.get() {
        State::Done => {}
        State::Polling | State::Woken => task.state.set(State::Cancelled),
        State::Idle | State::Cancelled => {
            task.state.set(State::Done);
            let future = task.future.borrow_mut().take();
            drop(future);
        }
    }
}

/// Polls `task` until it is pending and not woken, or done; then the tasks
/// spawned meanwhile.
fn run(task: &Rc<Task>) {
    match task.state.get() {
        State::Polling | State::Woken => return task.state.set(State::Woken),
        State::Done | State::Cancelled => return,
        State::Idle => {}
    }
    DEPTH.set(DEPTH.get() + 1);
    let waker = waker(task.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        task.state.set(State::Polling);
        let ready = match task.future.borrow_mut().as_mut() {
            Some(future) => future.as_mut().poll(&mut cx).is_ready(),
            None => true,
        };
        if ready || task.state.get() == State::Cancelled {
            task.state.set(State::Done);
            // Dropped outside the borrow: a drop may wake other tasks.
            let future = task.future.borrow_mut().take();
            drop(future);
            break;
        }
        if task.state.get() == State::Polling {
            task.state.set(State::Idle);
            watch(task);
            break;
        }
    }
    DEPTH.set(DEPTH.get() - 1);
    if DEPTH.get() == 0 {
        while let Some(next) = SPAWNED.with_borrow_mut(Vec::pop) {
            run(&next);
        }
    }
}

fn waker(task: Rc<Task>) -> Waker {
    let raw = RawWaker::new(Rc::into_raw(task).cast(), &VTABLE);
    // SAFETY: the vtable below treats the pointer as an `Rc<Task>` it owns
    // (one count per waker). Wasm without atomics has one thread, so the
    // waker is never used from another thread, though `Waker` is `Send`.
    unsafe { Waker::from_raw(raw) }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` came from `Rc::into_raw` and its count is still held.
    unsafe { Rc::increment_strong_count(data.cast::<Task>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: takes over the waker's count.
    let task = unsafe { Rc::from_raw(data.cast::<Task>()) };
    run(&task);
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: borrows the waker's count without releasing it.
    let task = std::mem::ManuallyDrop::new(unsafe { Rc::from_raw(data.cast::<Task>()) });
    run(&task);
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: releases the waker's count.
    drop(unsafe { Rc::from_raw(data.cast::<Task>()) });
}

/// A promise's outcome, awaited.
///
/// Not `JsFuture`: it makes two wasm-bindgen closures an await (each a JS
/// wrapper registered with a `FinalizationRegistry`, then unregistered and
/// destroyed), about 4% of a Cache API hit's time in the isolate's profile,
/// whose one await is the `cache.match`. Here the isolate makes one closure,
/// once; `glue.js` hands each outcome to it with the number of the slot its
/// future waits on. An outcome whose future was dropped (a cancelled task)
/// finds no slot and is dropped too. After a panic the instance starts over
/// (see `entry.js`): the old closure then throws, as wasm-bindgen's do, and
/// the new instance makes its own.
pub fn settled(promise: js_sys::Promise) -> Settled {
    let slot = SLOTS.with_borrow_mut(|slots| {
        let mut slot = slots.next;
        while slots.waiting.contains_key(&slot) {
            slot = slot.wrapping_add(1);
        }
        slots.next = slot.wrapping_add(1);
        slots.waiting.insert(slot, Outcome::Pending(None));
        slot
    });
    SETTLE.with(|settle| when_settled(&promise, settle, slot));
    Settled { slot: Some(slot) }
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/edge/glue.js")]
extern "C" {
    #[wasm_bindgen(js_name = whenSettled)]
    fn when_settled(promise: &js_sys::Promise, settle: &JsValue, slot: u32);
}

enum Outcome {
    Pending(Option<Waker>),
    Settled(Result<JsValue, JsValue>),
}

#[derive(Default)]
struct Slots {
    waiting: std::collections::HashMap<u32, Outcome>,
    next: u32,
}

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::default();
    /// The one closure outcomes come back through, for the instance's life.
    static SETTLE: JsValue = wasm_bindgen::closure::Closure::<dyn Fn(u32, JsValue, bool)>::new(
        |slot, value, ok| {
            let waker = SLOTS.with_borrow_mut(|slots| {
                let outcome = slots.waiting.get_mut(&slot)?;
                let settled = Outcome::Settled(if ok { Ok(value) } else { Err(value) });
                match std::mem::replace(outcome, settled) {
                    Outcome::Pending(waker) => waker,
                    Outcome::Settled(_) => None,
                }
            });
            // Woken outside the borrow: the wake polls the task at once.
            if let Some(waker) = waker {
                waker.wake();
            }
        },
    )
    .into_js_value();
}

/// The future of [`settled`]: its slot, until it took its outcome.
pub struct Settled {
    slot: Option<u32>,
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> std::task::Poll<Self::Output> {
        let slot = self.slot.expect("not polled after it is ready");
        let ready = SLOTS.with_borrow_mut(|slots| match slots.waiting.get_mut(&slot) {
            Some(Outcome::Pending(waker)) => {
                *waker = Some(cx.waker().clone());
                None
            }
            _ => match slots.waiting.remove(&slot) {
                Some(Outcome::Settled(outcome)) => Some(outcome),
                _ => unreachable!("a slot lives until its future takes its outcome"),
            },
        });
        match ready {
            Some(outcome) => {
                self.slot = None;
                std::task::Poll::Ready(outcome)
            }
            None => std::task::Poll::Pending,
        }
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        // Taken out of the borrow before it is dropped: a waker's drop
        // may drop a task, whose futures drop their own slots.
        if let Some(slot) = self.slot {
            let gone = SLOTS.with_borrow_mut(|slots| slots.waiting.remove(&slot));
            drop(gone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Poll;
    use wasm_bindgen_futures::JsFuture;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    async fn a_promise_settles_with_its_future() {
        let ok = promise(async { Ok(JsValue::from(7)) });
        assert_eq!(JsFuture::from(ok).await.unwrap(), JsValue::from(7));
        let err = promise(async { Err(JsValue::from("no")) });
        assert_eq!(JsFuture::from(err).await.unwrap_err(), JsValue::from("no"));
    }

    #[wasm_bindgen_test]
    async fn an_await_gives_the_outcome_and_a_dropped_one_keeps_nothing() {
        let ok = js_sys::Promise::resolve(&JsValue::from(7));
        assert_eq!(settled(ok).await.unwrap(), JsValue::from(7));
        let err = js_sys::Promise::reject(&JsValue::from("no"));
        assert_eq!(settled(err).await.unwrap_err(), JsValue::from("no"));
        // Dropped before its promise settles (its task was cancelled): the
        // late outcome finds no slot, and a later await is not confused.
        let mut resolve = None;
        let late = js_sys::Promise::new(&mut |res, _| resolve = Some(res));
        drop(settled(late));
        let next = settled(js_sys::Promise::resolve(&JsValue::from(2)));
        resolve
            .unwrap()
            .call1(&JsValue::UNDEFINED, &JsValue::from(1))
            .unwrap();
        assert_eq!(next.await.unwrap(), JsValue::from(2));
        turns(2).await;
        assert!(SLOTS.with_borrow(|slots| slots.waiting.is_empty()));
    }

    #[wasm_bindgen_test]
    async fn an_aborted_request_drops_its_work() {
        for abort_early in [false, true] {
            let dropped = Rc::new(Cell::new(false));
            let controller = web_sys::AbortController::new().unwrap();
            let _never = promise_until_aborted(waits_twice(dropped.clone()), &controller.signal());
            if abort_early {
                // Gone while the first wait (a hit's only one) is under way:
                // nothing listens yet, and the second wait sees it.
                controller.abort();
                assert!(!dropped.get());
                turns(3).await;
                assert!(dropped.get());
            } else {
                turns(3).await;
                assert!(!dropped.get());
                controller.abort();
                assert!(dropped.get());
            }
        }
    }

    /// A task's future that waits once briefly, then forever (as a
    /// cancelled request's I/O, whose waker keeps the task alive), and
    /// says when it is dropped.
    async fn waits_twice(dropped: Rc<Cell<bool>>) -> Result<JsValue, JsValue> {
        struct Guard(Rc<Cell<bool>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let _held = Guard(dropped);
        turns(1).await;
        let never = js_sys::Promise::new(&mut |_, _| {});
        let _ = JsFuture::from(never).await;
        Ok(JsValue::UNDEFINED)
    }

    /// Lets `n` microtask turns pass.
    async fn turns(n: usize) {
        for _ in 0..n {
            let _ = JsFuture::from(js_sys::Promise::resolve(&JsValue::UNDEFINED)).await;
        }
    }

    #[wasm_bindgen_test]
    async fn a_wake_during_its_own_poll_polls_again() {
        let polls = Rc::new(Cell::new(0));
        let counted = polls.clone();
        let done = promise(async move {
            std::future::poll_fn(|cx| {
                counted.set(counted.get() + 1);
                if counted.get() < 3 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(())
            })
            .await;
            Ok(JsValue::UNDEFINED)
        });
        JsFuture::from(done).await.unwrap();
        assert_eq!(polls.get(), 3);
    }

    #[wasm_bindgen_test]
    async fn a_task_spawned_in_a_poll_runs_after_it_returns() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let log = order.clone();
        let done = promise(async move {
            let inner = log.clone();
            let held = log.borrow_mut();
            let _ = promise(async move {
                inner.borrow_mut().push("spawned");
                Ok(JsValue::UNDEFINED)
            });
            drop(held);
            log.borrow_mut().push("spawner");
            Ok(JsValue::UNDEFINED)
        });
        JsFuture::from(done).await.unwrap();
        assert_eq!(*order.borrow(), ["spawner", "spawned"]);
    }
}
