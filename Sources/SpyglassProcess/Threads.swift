//===--- Threads.swift - a thread of our own and a queue to hand work over ---===//
//
// The `Sampler` of the library samples on a thread of its own and hands each sample to the caller
// through a bounded queue. Both are thin wrappers over pthreads (no Foundation: the executable
// stays small), and the only place outside the readers where raw pointers are used: the mutex and
// condition variable must not move in memory, so they are allocated once and freed in deinit.
//
//===----------------------------------------------------------------------===//

import Glibc

/// A bounded first-in, first-out queue between one producer thread and one consumer thread. A
/// full queue drops the oldest element (a slow consumer sees the newest samples, and the producer
/// never blocks on it); `close()` wakes a waiting consumer.
package final class BlockingQueue<Element>: @unchecked Sendable {
  // Safe: allocated and initialised once in init, destroyed and freed once in deinit; every access
  // in between holds `mutex`.
  private let mutex: UnsafeMutablePointer<pthread_mutex_t>
  private let condition: UnsafeMutablePointer<pthread_cond_t>
  private var items: [Element] = []
  private var head = 0
  private var closed = false
  package let capacity: Int
  /// How many elements were dropped because the queue was full.
  package private(set) var dropped = 0

  package init(capacity: Int) {
    self.capacity = Swift.max(1, capacity)
    mutex = .allocate(capacity: 1)
    condition = .allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(condition, nil)
  }

  deinit {
    pthread_cond_destroy(condition)
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
    condition.deallocate()
  }

  private func locked<T>(_ body: () -> T) -> T {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return body()
  }

  /// Adds an element (dropping the oldest when full); false once the queue is closed.
  @discardableResult
  package func push(_ element: Element) -> Bool {
    locked {
      if closed { return false }
      if items.count - head >= capacity {
        head += 1
        dropped += 1
      }
      items.append(element)
      if head > 64 && head * 2 > items.count {
        items.removeFirst(head)
        head = 0
      }
      pthread_cond_signal(condition)
      return true
    }
  }

  /// The oldest element, waiting for one; nil once the queue is closed and empty.
  package func pop() -> Element? {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    while head == items.count && !closed { pthread_cond_wait(condition, mutex) }
    guard head < items.count else { return nil }
    let element = items[head]
    head += 1
    if head == items.count {
      items.removeAll(keepingCapacity: true)
      head = 0
    }
    return element
  }

  /// No more elements will come: wakes the consumer, and `push` returns false from now on.
  package func close() {
    locked {
      closed = true
      pthread_cond_broadcast(condition)
    }
  }

  package var isClosed: Bool { locked { closed } }
}

/// A joinable thread running one closure.
package final class BackgroundThread: @unchecked Sendable {
  private var thread = pthread_t()
  private var joined = false
  private let body: () -> Void

  /// Starts `body` on a new thread.
  package init(_ body: @escaping () -> Void) throws(Errno) {
    self.body = body
    let box = Unmanaged.passRetained(self)
    let result = pthread_create(
      &thread, nil,
      { argument in
        // Safe: `argument` is the retained self passed below, released here exactly once.
        let me = Unmanaged<BackgroundThread>.fromOpaque(argument!).takeRetainedValue()
        me.body()
        return nil
      }, box.toOpaque())
    if result != 0 {
      box.release()
      throw Errno(rawValue: result)
    }
  }

  /// Waits for the thread to finish (once; later calls return at once).
  package func join() {
    if joined { return }
    joined = true
    pthread_join(thread, nil)
  }
}

/// A mutual-exclusion lock (a pthread mutex that never moves).
package final class Lock: @unchecked Sendable {
  // Safe: allocated and initialised once in init, destroyed and freed once in deinit.
  private let mutex: UnsafeMutablePointer<pthread_mutex_t>

  package init() {
    mutex = .allocate(capacity: 1)
    pthread_mutex_init(mutex, nil)
  }

  deinit {
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
  }

  package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return try body()
  }
}
