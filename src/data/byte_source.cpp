#include "byte_source.h"

#include <algorithm>
#include <cstdio>

#include "kiln/core/error.h"

namespace kiln::data::detail {

ByteSource::ByteSource(std::unique_ptr<std::istream> in, std::string name, std::size_t buffer_size)
    : in_(std::move(in)), name_(std::move(name)), buf_(std::max<std::size_t>(buffer_size, 16)) {}

bool ByteSource::refill() {
  if (pos_ < end_) return true;
  if (eof_ || !in_) return false;
  base_ += static_cast<std::int64_t>(end_);
  pos_ = end_ = 0;
  in_->read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  end_ = static_cast<std::size_t>(in_->gcount());
  if (in_->bad()) {
    throw IoError(name_ + ": read failed after " + std::to_string(base_) +
                  " bytes; check that the file is readable and not truncated");
  }
  if (end_ < buf_.size()) eof_ = true;
  return end_ > 0;
}

std::string ByteSource::where(std::int64_t line, std::int64_t column) const {
  return name_ + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string quote_for_message(std::string_view s, std::size_t max) {
  std::string out = "'";
  std::size_t n = s.size();
  bool cut = false;
  if (n > max) {
    n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    cut = true;
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (cut) out += "...";
  out += "'";
  return out;
}

}  // namespace kiln::data::detail
