#include "vlm/hub/repo_metadata.h"

#include <cctype>
#include <string>

#include <nlohmann/json.hpp>

#include "vlm/error.h"
#include "vlm/hub/digest.h"
#include "vlm/hub/file_selection.h"

namespace vlm::hub {
namespace {

[[noreturn]] void malformed(std::string_view what, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": the hub's revision document " + why);
}

}  // namespace

const RepoFile* RepoRevision::find(std::string_view path) const {
  for (const RepoFile& file : files) {
    if (file.path == path) return &file;
  }
  return nullptr;
}

std::vector<std::string> RepoRevision::paths() const {
  std::vector<std::string> result;
  result.reserve(files.size());
  for (const RepoFile& file : files) result.push_back(file.path);
  return result;
}

std::string url_quote(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string quoted;
  for (unsigned char c : text) {
    bool unreserved = std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (unreserved) {
      quoted += static_cast<char>(c);
    } else {
      quoted += '%';
      quoted += kHex[c >> 4];
      quoted += kHex[c & 0xf];
    }
  }
  return quoted;
}

std::string resolve_url(std::string_view endpoint, const RepoSpec& spec, std::string_view commit,
                        std::string_view repo_path) {
  return std::string(endpoint) + "/" + spec.repo_id + "/resolve/" + url_quote(commit, false) + "/" +
         url_quote(repo_path, true);
}

RepoRevision parse_repo_revision(std::string_view json, std::string_view what) {
  nlohmann::json document = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) malformed(what, "is not a JSON object");
  RepoRevision revision;
  auto sha = document.find("sha");
  if (sha == document.end() || !sha->is_string() || !is_commit_hash(sha->get<std::string>())) {
    malformed(what, "has no 40-hex \"sha\" commit");
  }
  revision.commit = sha->get<std::string>();
  auto siblings = document.find("siblings");
  if (siblings == document.end() || !siblings->is_array()) malformed(what, "has no \"siblings\" array");
  for (const auto& sibling : *siblings) {
    if (!sibling.is_object() || !sibling.contains("rfilename") || !sibling["rfilename"].is_string()) {
      malformed(what, "lists a sibling without \"rfilename\"");
    }
    RepoFile file;
    file.path = sibling["rfilename"].get<std::string>();
    if (!is_safe_repo_path(file.path)) malformed(what, "lists an unsafe file path '" + file.path + "'");
    if (sibling.contains("size") && sibling["size"].is_number_unsigned())
      file.size = sibling["size"].get<std::uint64_t>();
    if (sibling.contains("blobId") && sibling["blobId"].is_string())
      file.blob_id = sibling["blobId"].get<std::string>();
    if (!file.blob_id.empty() && !is_sha1_hex(file.blob_id))
      malformed(what, "gives '" + file.path + "' a malformed blobId");
    if (sibling.contains("lfs") && sibling["lfs"].is_object()) {
      const auto& lfs = sibling["lfs"];
      if (!lfs.contains("sha256") || !lfs["sha256"].is_string() || !is_sha256_hex(lfs["sha256"].get<std::string>())) {
        malformed(what, "gives LFS file '" + file.path + "' no valid sha256");
      }
      file.sha256 = lfs["sha256"].get<std::string>();
      if (lfs.contains("size") && lfs["size"].is_number_unsigned()) file.size = lfs["size"].get<std::uint64_t>();
    }
    revision.files.push_back(std::move(file));
  }
  return revision;
}

std::string normalize_etag(std::string_view etag) {
  if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return std::string(etag);
}

void fill_metadata_from_head(const HubTransport& transport, const std::string& url, RepoFile& file) {
  HttpResponse response = transport.head(url, file.path);
  std::string linked = normalize_etag(response.header("x-linked-etag"));
  std::string etag = normalize_etag(response.header("etag"));
  std::string size = response.header("x-linked-size");
  if (size.empty() && !response.is_redirect()) size = response.header("content-length");
  if (is_sha256_hex(linked)) {
    file.sha256 = linked;
  } else if (is_sha1_hex(etag)) {
    file.blob_id = etag;
  } else if (is_sha256_hex(etag)) {
    file.sha256 = etag;
  } else {
    throw Error(ErrorCode::kUnavailable, file.path +
                                             ": the hub gave no SHA-256 or git blob id to verify it against (ETag '" +
                                             etag + "', X-Linked-Etag '" + linked + "')");
  }
  try {
    file.size = std::stoull(size);
  } catch (const std::exception&) {
    throw Error(ErrorCode::kUnavailable,
                file.path + ": the hub gave no size for it (X-Linked-Size / Content-Length '" + size + "')");
  }
}

RepoRevision fetch_repo_revision(const HubTransport& transport, const RepoSpec& spec) {
  std::string url = transport.endpoint() + "/api/models/" + spec.repo_id + "/revision/" +
                    url_quote(spec.revision, false) + "?blobs=true";
  std::string what = spec.to_string();
  HttpResponse response = transport.get(url, what);
  return parse_repo_revision(response.body, what);
}

}  // namespace vlm::hub
