//===--- Compression.swift - gzip through zlib ----------------------------===//
//
// pprof files are gzipped protobuf. zlib (linked statically) does the work; the buffers are
// handed to it here, in the one layer that touches raw pointers.
//
//===----------------------------------------------------------------------===//

import CSpyglass

package enum Compression {
  /// `input` gzip-compressed; throws zlib's status code when it fails.
  package static func gzip(_ input: [UInt8]) throws(CompressionError) -> [UInt8] {
    var output = [UInt8](repeating: 0, count: spy_gzip_bound(input.count))
    var length = output.count
    // Safe: both buffers are valid for the closures' duration; zlib writes at most `length` bytes.
    let status = input.withUnsafeBufferPointer { source in
      output.withUnsafeMutableBufferPointer { destination in
        spy_gzip(source.baseAddress, source.count, destination.baseAddress, &length)
      }
    }
    guard status == 0 else { throw .zlib(code: status) }
    output.removeSubrange(length...)
    return output
  }
}

extension Compression {
  /// The one gzip member `input` holds, decompressed; at most `limit` bytes (below 4 GiB), so that
  /// damaged or hostile input can never make it allocate more than that.
  package static func gunzip(_ input: [UInt8], limit: Int) throws(CompressionError) -> [UInt8] {
    let limit = min(limit, Int(UInt32.max) - 1)
    var capacity = min(limit, max(1 << 20, input.count.multipliedReportingOverflow(by: 8).partialValue))
    while true {
      var output = [UInt8](repeating: 0, count: max(1, capacity))
      var length = output.count
      var consumed = 0
      // Safe: both buffers are valid for the closures' duration; zlib writes at most `length`
      // bytes and reads at most `input.count`.
      let status = input.withUnsafeBufferPointer { source in
        output.withUnsafeMutableBufferPointer { destination in
          spy_gunzip(source.baseAddress, source.count, destination.baseAddress, &length, &consumed)
        }
      }
      switch status {
      case 0:
        guard consumed == input.count else { throw .trailingData }
        output.removeSubrange(length...)
        return output
      case 1:
        guard capacity < limit else { throw .tooLarge(limit: limit) }
        capacity = capacity > limit / 2 ? limit : capacity * 2
      case 2: throw .truncated
      default: throw .corrupt
      }
    }
  }
}

/// Why zlib could not compress or decompress.
package enum CompressionError: Error, Sendable, Equatable, CustomStringConvertible {
  /// zlib refused to compress (its status code).
  case zlib(code: Int32)
  /// Not gzip data, or data that does not decode.
  case corrupt
  /// The data ends before the gzip member does.
  case truncated
  /// More than the limit once decompressed.
  case tooLarge(limit: Int)
  /// Bytes follow the gzip member.
  case trailingData

  package var description: String {
    switch self {
    case .zlib(let code): "zlib error \(code)"
    case .corrupt: "the gzip data does not decompress"
    case .truncated: "the gzip data is cut short"
    case .tooLarge(let limit): "more than \(limit) bytes once decompressed"
    case .trailingData: "bytes follow the gzip data"
    }
  }
}
