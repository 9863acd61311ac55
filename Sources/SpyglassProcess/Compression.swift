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
    guard status == 0 else { throw CompressionError(code: status) }
    output.removeSubrange(length...)
    return output
  }
}

/// zlib's status code of a failed compression.
package struct CompressionError: Error, Sendable, Equatable {
  package let code: Int32
}
