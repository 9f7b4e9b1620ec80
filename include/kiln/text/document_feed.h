// Documents handed from the thread that reads them to a fit running on other threads, in pieces of
// consecutive documents, so that counting starts while the input is still being read.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::text {

class DocumentFeed {
 public:
  /// Consecutive documents, their bytes end to end in one buffer: `index` counts pieces from 0,
  /// `first_doc` is the number of documents in the pieces before this one.
  class Piece {
   public:
    /// Reader: appends a document.
    void add(std::string_view doc) {
      text_.append(doc);
      ends_.push_back(text_.size());
    }
    /// Reader: room for `bytes` of documents without growing the buffer.
    void reserve(std::size_t bytes) { text_.reserve(bytes); }
    [[nodiscard]] std::size_t size() const { return ends_.size(); }
    [[nodiscard]] std::size_t text_bytes() const { return text_.size(); }

    /// The documents, as views of this piece's buffer (set when the piece is pushed).
    std::vector<std::string_view> docs;
    std::size_t index = 0;
    std::size_t first_doc = 0;

   private:
    friend class DocumentFeed;
    std::string text_;
    std::vector<std::size_t> ends_;
  };

  DocumentFeed() = default;
  DocumentFeed(const DocumentFeed&) = delete;
  DocumentFeed& operator=(const DocumentFeed&) = delete;

  /// Reader: an empty piece to fill with add() and push(), its buffers those of a recycled piece
  /// when there is one (a document's memory is then used again rather than newly allocated).
  [[nodiscard]] Piece piece();
  /// Reader: appends the next documents (an empty piece appends nothing). Not after close().
  void push(Piece piece);
  /// The same for documents held as strings (copied into a piece).
  void push(const std::vector<std::string>& docs);
  /// Reader: no more documents. Call it also when reading fails, or the fit waits forever.
  void close();

  /// Fit: the next piece no caller has taken yet, waiting for the reader; nullptr once the feed is
  /// closed and every piece is taken. The piece stays valid (and unchanged) while the feed lives,
  /// until its taker recycles it.
  [[nodiscard]] const Piece* take();
  /// Fit: the taker of `piece` is done with its documents; its buffers go to a later piece() and
  /// its `docs` are empty from now on.
  void recycle(const Piece* piece);

  /// Fit: waits until the reader has closed the feed.
  void wait_closed();

  /// Documents and pieces pushed so far (all of them after close()).
  [[nodiscard]] std::size_t documents() const;
  [[nodiscard]] std::size_t pieces() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Piece> pieces_;  ///< push_back keeps references to earlier pieces valid
  std::vector<Piece> spare_;  ///< recycled pieces' buffers, emptied
  std::size_t taken_ = 0;
  std::size_t documents_ = 0;
  bool closed_ = false;
};

}  // namespace kiln::text
