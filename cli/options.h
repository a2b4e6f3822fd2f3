#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server_config.h"
#include "vlm/audit/audit_log.h"
#include "vlm/image.h"
#include "vlm/model.h"

namespace vlm::cli {

// `vlmserve detect`'s own options.
struct DetectRunOptions {
  int batch = 8;  // images per forward pass
  bool recursive = false;
  std::string out;  // empty: standard output
  std::string save_annotated;
  std::string format = "jsonl";  // jsonl, coco or csv
  std::string save_txt;          // folder for YOLO label files; empty: none
  bool save_conf = false;        // label lines end with the score
  std::string save_crop;         // folder for per-class crops; empty: none
  int vid_stride = 1;            // run every Nth video frame
};

// The audit log options as the user gives them (MiB, hours, seconds); audit_options() turns them into
// audit::AuditOptions, whose defaults these are.
struct AuditSettings {
  std::string dir;  // empty: no audit log
  std::string key_file;
  std::string signing_key_file;
  std::string checkpoint_copy;
  bool no_fsync = !audit::AuditOptions{}.fsync_each_record;
  double rotate_mb = static_cast<double>(audit::AuditOptions{}.rotate_bytes) / (1 << 20);
  double rotate_hours = static_cast<double>(audit::AuditOptions{}.rotate_interval.count()) / 3600;
  std::int64_t checkpoint_records = static_cast<std::int64_t>(audit::AuditOptions{}.checkpoint_every_records);
  double checkpoint_s = static_cast<double>(audit::AuditOptions{}.checkpoint_interval.count()) / 1000;
};

// `vlmserve audit verify|find`.
struct AuditQueryOptions {
  std::string public_key;
  std::vector<std::string> checkpoints;
  bool partial = false;
  std::string id;
  std::string transcript_file;
  std::string final_file;
};

struct HubSettings {
  std::string cache;  // empty: ~/.cache/vlmserve
  bool offline = false;
};

struct LogSettings {
  std::string level = "info";
  std::string format = "text";
};

// Every option's typed value. The option table (option_table.cpp) binds each entry to one field;
// the defaults are these initialisers and those of the structs they hold, nowhere else.
struct Options {
  std::vector<std::string> models;  // --model: PATH or NAME=PATH
  ModelOptions model;
  int threads = 0;  // 0: libtorch's default
  DetectOptions detect;
  double max_pixels = static_cast<double>(ImageLoadOptions{}.max_pixels);
  DetectRunOptions detect_run;
  server::ServerConfig server;  // serve's own options; models, audit and the shared ones are filled after
  std::string api_key_file;
  std::string think_policy;  // empty: the built-in policy
  std::string question;
  AuditSettings audit;
  AuditQueryOptions audit_query;
  HubSettings hub;
  LogSettings log;
};

}  // namespace vlm::cli
