#include "kiln/learn/feedback_stream.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace kiln::learn {

FeedbackItem parse_feedback_line(const std::string& line, const std::string& where) {
  const std::string shape = "; each line must be one JSON object like {\"text\": \"...\", \"label\": \"...\"}";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    const auto colon = what.find("parse error");
    throw DataError(where + ": not valid JSON (" + (colon == std::string::npos ? what : what.substr(colon)) + ")" + shape);
  }
  if (!j.is_object()) throw DataError(where + ": expected a JSON object, got " + std::string(j.type_name()) + shape);
  FeedbackItem item;
  item.where = where;
  if (!j.contains("label")) throw DataError(where + ": missing \"label\"" + shape);
  if (!j["label"].is_string() || j["label"].get<std::string>().empty()) {
    throw DataError(where + ": \"label\" must be a non-empty string, got " + j["label"].dump());
  }
  item.example.label = j["label"].get<std::string>();
  if (j.contains("text")) {
    if (!j["text"].is_string()) throw DataError(where + ": \"text\" must be a string, got " + std::string(j["text"].type_name()));
    item.example.text = j["text"].get<std::string>();
  }
  if (j.contains("image")) {
    if (!j["image"].is_string() || j["image"].get<std::string>().empty()) {
      throw DataError(where + ": \"image\" must be a file path (a non-empty string)");
    }
    item.example.image = data::ImageRef{j["image"].get<std::string>(), {}};
  }
  if (!item.example.text && !item.example.image) throw DataError(where + ": missing \"text\" (or \"image\")" + shape);
  if (j.contains("id")) {
    const auto& id = j["id"];
    if (id.is_string()) item.id = id.get<std::string>();
    else if (id.is_number_integer()) item.id = id.dump();
    else throw DataError(where + ": \"id\" must be a string or an integer, got " + std::string(id.type_name()));
  }
  return item;
}

FeedbackReader::FeedbackReader(std::istream& in, std::string name)
    : in_(in), name_(name == "-" ? "stdin" : name) {
  std::filesystem::path dir = name == "-" ? std::filesystem::path() : std::filesystem::path(name).parent_path();
  base_dir_ = std::filesystem::absolute(dir.empty() ? std::filesystem::path(".") : dir).lexically_normal().string();
}

std::optional<FeedbackItem> FeedbackReader::next() {
  std::string line;
  while (std::getline(in_, line)) {
    ++line_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    FeedbackItem item = parse_feedback_line(line, name_ + ":" + std::to_string(line_));
    if (item.example.image && std::filesystem::path(item.example.image->path).is_relative()) {
      item.example.image->path = (std::filesystem::path(base_dir_) / item.example.image->path).lexically_normal().string();
    }
    return item;
  }
  if (in_.bad()) throw IoError(name_ + ": read failed after line " + std::to_string(line_));
  return std::nullopt;
}

}  // namespace kiln::learn
