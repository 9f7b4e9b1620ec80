// Documents handed from the thread that reads them to a fit running on other threads, in pieces of
// consecutive documents, so that counting starts while the input is still being read.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::text {

class DocumentFeed {
 public:
  /// Consecutive documents: `index` counts pieces from 0, `first_doc` is the number of documents
  /// in the pieces before this one.
  struct Piece {
    std::vector<std::string> docs;
    std::size_t index = 0;
    std::size_t first_doc = 0;
  };

  DocumentFeed() = default;
  DocumentFeed(const DocumentFeed&) = delete;
  DocumentFeed& operator=(const DocumentFeed&) = delete;

  /// Reader: appends the next documents (an empty vector appends nothing). Not after close().
  void push(std::vector<std::string> docs);
  /// Reader: no more documents. Call it also when reading fails, or the fit waits forever.
  void close();

  /// Fit: the next piece no caller has taken yet, waiting for the reader; nullptr once the feed is
  /// closed and every piece is taken. The piece stays valid (and unchanged) while the feed lives.
  [[nodiscard]] const Piece* take();

  /// Fit: waits until the reader has closed the feed.
  void wait_closed();

  /// Documents and pieces pushed so far (all of them after close()).
  [[nodiscard]] std::size_t documents() const;
  [[nodiscard]] std::size_t pieces() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Piece> pieces_;  ///< push_back keeps references to earlier pieces valid
  std::size_t taken_ = 0;
  std::size_t documents_ = 0;
  bool closed_ = false;
};

}  // namespace kiln::text
