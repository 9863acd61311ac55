//===--- UploadQueue.swift - one destination's waiting requests, bounded ---===//
//
// Each destination keeps its encoded requests in order, oldest first, until they are sent. The
// queue is bounded by body bytes (and, so that tiny requests cannot pile up either, by count):
// a request that does not fit pushes the oldest ones out, which are then counted as dropped. The
// oldest request may be on its way to the destination; it is never pushed out while it is (its
// outcome decides), so the newest requests may go instead when it alone fills the queue.
//
//===----------------------------------------------------------------------===//

/// A first-in, first-out queue of requests bounded by bytes and count.
struct UploadQueue {
  private var items: [EncodedRequest] = []
  private var head = 0
  private(set) var bytes = 0
  private(set) var profiles = 0
  let limitBytes: Int
  let limitRequests: Int

  /// What a queue gave up to keep within its bounds.
  struct Dropped: Equatable {
    var requests = 0
    var profiles = 0
    var bytes = 0
  }

  init(limitBytes: Int, limitRequests: Int) {
    self.limitBytes = max(0, limitBytes)
    self.limitRequests = max(1, limitRequests)
  }

  var count: Int { items.count - head }
  var isEmpty: Bool { head == items.count }
  var first: EncodedRequest? { isEmpty ? nil : items[head] }

  /// Adds `request` at the end, then drops the oldest requests (not the first when `keepFirst`:
  /// it is being sent) until the queue is within its bounds again.
  mutating func append(_ request: EncodedRequest, keepFirst: Bool) -> Dropped {
    items.append(request)
    bytes += request.body.count
    profiles += request.profileCount
    var dropped = Dropped()
    while bytes > limitBytes || count > limitRequests {
      let victim = head + (keepFirst ? 1 : 0)
      guard victim < items.count else { break }
      let removed = victim == head ? takeFirst() : remove(at: victim)
      dropped.requests += 1
      dropped.profiles += removed.profileCount
      dropped.bytes += removed.body.count
    }
    return dropped
  }

  /// Removes and returns the oldest request.
  mutating func removeFirst() -> EncodedRequest {
    precondition(!isEmpty, "removeFirst on an empty upload queue")
    return takeFirst()
  }

  /// Empties the queue; returns what it held.
  mutating func removeAll() -> Dropped {
    let held = Dropped(requests: count, profiles: profiles, bytes: bytes)
    items.removeAll()
    head = 0
    bytes = 0
    profiles = 0
    return held
  }

  private mutating func takeFirst() -> EncodedRequest {
    let request = items[head]
    items[head] = EncodedRequest(path: "", contentType: "", body: [], profileCount: 0)  // frees the body now
    head += 1
    account(removing: request)
    if head == items.count {
      items.removeAll(keepingCapacity: items.count <= 64)
      head = 0
    } else if head > 32 && head * 2 > items.count {
      items.removeFirst(head)
      head = 0
    }
    return request
  }

  private mutating func remove(at index: Int) -> EncodedRequest {
    let request = items.remove(at: index)
    account(removing: request)
    return request
  }

  private mutating func account(removing request: EncodedRequest) {
    bytes -= request.body.count
    profiles -= request.profileCount
  }
}
