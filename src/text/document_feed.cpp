#include "kiln/text/document_feed.h"

#include <utility>

namespace kiln::text {

void DocumentFeed::push(std::vector<std::string> docs) {
  if (docs.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Piece& p = pieces_.emplace_back();
    p.docs = std::move(docs);
    p.index = pieces_.size() - 1;
    p.first_doc = documents_;
    documents_ += p.docs.size();
  }
  ready_.notify_one();
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
