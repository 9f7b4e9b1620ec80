// Kiln's exception hierarchy. Every message names where (file:line:column, field, tensor), what was
// found, what was expected, and how to fix it. The CLI catches once in main; the server maps these to
// 4xx/5xx JSON bodies.
#pragma once

#include <stdexcept>
#include <string>

namespace kiln {

/// Base of every error Kiln raises on purpose. Runtime failure: CLI exit code 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad flags, bad option values, bad config files. CLI exit code 2.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Malformed or unusable input data (files, rows, fields).
class DataError : public Error {
 public:
  using Error::Error;
};

/// Filesystem and process failures (cannot open, cannot rename, a child command failed).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A trained-model artifact that is missing, corrupt, truncated, foreign or too new.
class ArtifactError : public Error {
 public:
  using Error::Error;
};

}  // namespace kiln
