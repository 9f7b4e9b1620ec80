#include "kiln/text/document_feed.h"

#include <utility>

namespace kiln::text {

DocumentFeed::Piece DocumentFeed::piece() {
  std::lock_guard<std::mutex> lock(mu_);
  if (spare_.empty()) return Piece{};
  Piece p = std::move(spare_.back());
  spare_.pop_back();
  return p;
}

void DocumentFeed::push(Piece piece) {
  if (piece.ends_.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    piece.text_.clear();
    spare_.push_back(std::move(piece));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    Piece& p = pieces_.emplace_back(std::move(piece));
    // Views made here, where the buffer stays: moving a short string moves its bytes.
    p.docs.clear();
    p.docs.reserve(p.ends_.size());
    std::size_t begin = 0;
    for (const std::size_t end : p.ends_) {
      p.docs.emplace_back(p.text_.data() + begin, end - begin);
      begin = end;
    }
    p.index = pieces_.size() - 1;
    p.first_doc = documents_;
    documents_ += p.docs.size();
  }
  ready_.notify_one();
}

void DocumentFeed::push(const std::vector<std::string>& docs) {
  Piece p = piece();
  for (const auto& d : docs) p.add(d);
  push(std::move(p));
}

void DocumentFeed::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  ready_.notify_all();
}

const DocumentFeed::Piece* DocumentFeed::take() {
  std::unique_lock<std::mutex> lock(mu_);
  ready_.wait(lock, [&] { return taken_ < pieces_.size() || closed_; });
  if (taken_ == pieces_.size()) return nullptr;
  return &pieces_[taken_++];
}

void DocumentFeed::recycle(const Piece* piece) {
  std::lock_guard<std::mutex> lock(mu_);
  Piece& p = pieces_[piece->index];
  Piece spare;
  spare.text_ = std::move(p.text_);
  spare.ends_ = std::move(p.ends_);
  spare.docs = std::move(p.docs);
  spare.text_.clear();
  spare.ends_.clear();
  spare.docs.clear();
  p.text_.clear();
  p.ends_.clear();
  p.docs.clear();
  spare_.push_back(std::move(spare));
}

void DocumentFeed::wait_closed() {
  std::unique_lock<std::mutex> lock(mu_);
  ready_.wait(lock, [&] { return closed_; });
}

std::size_t DocumentFeed::documents() const {
  std::lock_guard<std::mutex> lock(mu_);
  return documents_;
}

std::size_t DocumentFeed::pieces() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pieces_.size();
}

}  // namespace kiln::text
