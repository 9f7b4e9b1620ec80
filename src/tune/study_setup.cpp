#include "kiln/tune/study_setup.h"

#include <unistd.h>

#include <filesystem>

#include "kiln/core/error.h"

namespace fs = std::filesystem;

namespace kiln::tune {

std::string default_study_dir(const std::string& study) { return (fs::path("runs") / "tune" / study).string(); }

std::string default_storage_url(const std::string& study_dir) {
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(study_dir) / "study.db", ec);
  return "sqlite:///" + p.lexically_normal().string();
}

std::string study_name_or_default(const std::string& study, const std::string& config_path) {
  if (!study.empty() || config_path.empty()) return study;
  return fs::path(config_path).stem().string();
}

StudyLocation locate_study(const std::string& study, const std::string& config_path, const std::string& out,
                           const std::string& storage) {
  StudyLocation loc;
  loc.name = study_name_or_default(study, config_path);
  loc.out = out.empty() ? default_study_dir(loc.name) : out;
  loc.url = storage.empty() ? default_storage_url(loc.out) : storage;
  return loc;
}

nlohmann::json space_to_json(const SearchSpace& space) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [name, d] : space) j.push_back({{"name", name}, {"distribution", d.to_json()}});
  return j;
}

SearchSpace stored_space(const StudyInfo& study) {
  SearchSpace space;
  const auto it = study.user_attrs.find("space");
  if (it == study.user_attrs.end()) return space;
  const auto j = nlohmann::json::parse(it->second, nullptr, false);
  if (!j.is_array()) return space;
  for (const auto& p : j) {
    space.emplace_back(p.at("name").get<std::string>(), Distribution::from_json(p.at("distribution"), "study space"));
  }
  return space;
}

StudyInfo create_or_resume_study(Storage& storage, const std::string& name, const TuneConfig& config,
                                 const std::string& url) {
  const auto existing = storage.find_study(name);
  const StudyInfo study = storage.create_or_load_study(name, config.direction);
  const std::string space_text = space_to_json(config.space).dump();
  if (existing) {
    const auto it = study.user_attrs.find("space");
    if (it != study.user_attrs.end() && it->second != space_text) {
      throw ConfigError("study '" + name + "' in " + mask_url_password(url) + " was created with another search space (" +
                        it->second + "); tune under a new --study name, or restore the space of " + config.path);
    }
  } else {
    storage.set_study_attr(study.id, "space", space_text);
    storage.set_study_attr(study.id, "metric", config.metric_name);
    storage.set_study_attr(study.id, "config", config.raw.dump());
  }
  return study;
}

StudyInfo find_existing_study(Storage& storage, const std::string& name, const std::string& url) {
  const auto study = storage.find_study(name);
  if (study) return *study;
  std::string names;
  for (const auto& s : storage.list_studies()) names += (names.empty() ? "" : ", ") + s.name;
  throw ConfigError("no study '" + name + "' in " + mask_url_password(url) +
                    (names.empty() ? " (it holds no study)" : " (it holds: " + names + ")") + "; check --study and --storage");
}

std::string worker_id() {
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

}  // namespace kiln::tune
