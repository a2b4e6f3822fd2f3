#include "option_table.h"

#include <algorithm>
#include <cctype>

#include "option_value.h"
#include "options.h"

namespace vlm::cli {
namespace {

using server::ServerConfig;

// A field of Options itself.
template <class T>
Binding top(T Options::*member) {
  return {[member](Options& options) -> FieldRef { return &(options.*member); }, {}};
}

// A field of one of the structs Options holds.
template <class Group, class T>
Binding in(Group Options::*group, T Group::*member) {
  return {[group, member](Options& options) -> FieldRef { return &(options.*group.*member); }, {}};
}

// A DetectOptions field: a flag of detect/serve and a POST /detect parameter of the same key.
template <class T>
Binding request(T DetectOptions::*member) {
  return {[member](Options& options) -> FieldRef { return &(options.detect.*member); },
          [member](DetectOptions& options) -> FieldRef { return &(options.*member); }};
}

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr Range kUnit{0, 1};
constexpr Range kPositive{0, kInf, true};
constexpr Range kNonNegative{0, kInf};
constexpr Range kAtLeastOne{1, kInf};

const std::vector<OptionSpec>& table() {
  static const std::vector<OptionSpec> kOptions = {
      {"model",
       top(&Options::models),
       "Model to load: PATH or NAME=PATH (TorchScript YOLO export or Florence-2 folder)",
       {"detect", "serve", "think"},
       std::nullopt,
       true},
      {"device",
       in(&Options::model, &ModelOptions::device),
       "Device: cpu, cuda or cuda:N",
       {"detect", "serve", "think"}},
      {"half", in(&Options::model, &ModelOptions::half), "Run in fp16 (CUDA only)", {"detect", "serve", "think"}},
      {"attention",
       in(&Options::model, &ModelOptions::attention),
       "Attention backend: auto, flash, eager or sdpa",
       {"detect", "serve", "think"}},
      {"flash-autotune",
       in(&Options::model, &ModelOptions::flash_autotune),
       "Time the flash kernel's tile configurations on the first call of each shape and keep the fastest "
       "(--flash-autotune=false: each head dim's default tile)",
       {"detect", "serve", "think"}},
      {"cuda-graphs",
       in(&Options::model, &ModelOptions::cuda_graphs),
       "On CUDA, capture repeated work as CUDA graphs and replay it: YOLO's forward pass at each batch size "
       "the batcher forms, Florence-2's decode step (--cuda-graphs=false: run eagerly)",
       {"detect", "serve", "think"}},
      {"threads",
       top(&Options::threads),
       "CPU threads for inference (0: libtorch's default)",
       {"detect", "serve", "think"},
       Range{0, 1024}},
      {"conf",
       request(&DetectOptions::conf),
       "Confidence threshold in [0, 1] (default: 0.25 for YOLO; none for Florence-2, whose region scores are "
       "token probabilities)",
       {"detect", "serve"},
       kUnit},
      {"iou", request(&DetectOptions::iou), "NMS IoU threshold in [0, 1]", {"detect", "serve"}, kUnit},
      {"max-det",
       request(&DetectOptions::max_det),
       "Maximum detections per image",
       {"detect", "serve"},
       Range{1, kMaxDetLimit}},
      {"classes",
       request(&DetectOptions::classes),
       "Keep only these class ids (e.g. 0,2)",
       {"detect", "serve"},
       Range{0, kMaxClassId}},
      {"agnostic-nms", request(&DetectOptions::agnostic_nms), "Class-agnostic NMS", {"detect", "serve"}},
      {"task", request(&DetectOptions::task), "Florence-2 task token, e.g. \"<OD>\"", {"detect"}},
      {"text", request(&DetectOptions::text), "Florence-2 task input text", {"detect"}},
      // Florence-2 generation: unset, the checkpoint's generation_config.json decides. Flags of
      // detect and parameters of each /detect request; a served model's defaults are its checkpoint's.
      {"num-beams",
       request(&DetectOptions::num_beams),
       "Florence-2 beam search width (1: greedy; default: the checkpoint's generation_config.json)",
       {"detect"},
       Range{1, kMaxNumBeams}},
      {"max-new-tokens",
       request(&DetectOptions::max_new_tokens),
       "Florence-2 tokens to generate at most (default: the checkpoint's; at most --max-new-tokens-limit)",
       {"detect"},
       Range{1, kMaxNewTokensCeiling}},
      {"no-repeat-ngram-size",
       request(&DetectOptions::no_repeat_ngram_size),
       "Florence-2: ban repeating any n-gram of this size (0: no ban; default: the checkpoint's)",
       {"detect"},
       Range{0, kMaxNoRepeatNgramSize}},
      {"length-penalty",
       request(&DetectOptions::length_penalty),
       "Florence-2 beam search: finished beams score sum(log p) / length^this (default: the checkpoint's)",
       {"detect"},
       Range{-kMaxLengthPenalty, kMaxLengthPenalty}},
      {"early-stopping",
       request(&DetectOptions::early_stopping),
       "Florence-2 beam search stop rule, as transformers' early_stopping (default: the checkpoint's)",
       {"detect"}},
      {"max-new-tokens-limit",
       in(&Options::model, &ModelOptions::max_new_tokens_limit),
       "Most Florence-2 tokens a request may ask for (max_new_tokens beyond it is refused); also caps the "
       "checkpoint's default",
       {"detect", "serve", "think"},
       Range{1, kMaxNewTokensCeiling}},
      {"max-pixels",
       top(&Options::max_pixels),
       "Largest image accepted, in pixels (checked before decoding)",
       {"detect", "serve", "think"},
       Range{1, 1e10}},
      {"max-request-pixels",
       in(&Options::server, &ServerConfig::max_request_pixels),
       "Pixels of all the images of one request together, checked before any is decoded (0: --max-pixels)",
       {"serve"},
       Range{0, 1e12}},
      {"batch",
       in(&Options::detect_run, &DetectRunOptions::batch),
       "Images per forward pass",
       {"detect"},
       Range{1, 1024}},
      {"recursive",
       in(&Options::detect_run, &DetectRunOptions::recursive),
       "Descend into sub-folders of folder arguments",
       {"detect"}},
      {"out",
       in(&Options::detect_run, &DetectRunOptions::out),
       "Write the results here, in --format (default: standard output)",
       {"detect"}},
      {"save-annotated",
       in(&Options::detect_run, &DetectRunOptions::save_annotated),
       "Write each image (each video as an .mp4) with its boxes drawn into this folder",
       {"detect"}},
      {"format",
       in(&Options::detect_run, &DetectRunOptions::format),
       "Results format: jsonl (one line per image or video frame), coco (one COCO JSON document) or csv (one "
       "row per detection)",
       {"detect"}},
      {"save-txt",
       in(&Options::detect_run, &DetectRunOptions::save_txt),
       "Write a YOLO label file per image into this folder (class x_center y_center width height, normalised)",
       {"detect"}},
      {"save-conf",
       in(&Options::detect_run, &DetectRunOptions::save_conf),
       "End each --save-txt line with the score",
       {"detect"}},
      {"save-crop",
       in(&Options::detect_run, &DetectRunOptions::save_crop),
       "Write each detection's crop into this folder, one sub-folder per class (Ultralytics' crops/ layout)",
       {"detect"}},
      {"vid-stride",
       in(&Options::detect_run, &DetectRunOptions::vid_stride),
       "Run every Nth frame of a video (frames 0, N, 2N, ...)",
       {"detect"},
       Range{1, 100000}},
      {"default-model",
       in(&Options::server, &ServerConfig::default_model),
       "Model used when a request names none (default: the first --model)",
       {"serve"}},
      {"host",
       in(&Options::server, &ServerConfig::host),
       "Address to listen on (0.0.0.0 for every interface)",
       {"serve"}},
      {"port",
       in(&Options::server, &ServerConfig::port),
       "TCP port (0: any free port, printed at start-up)",
       {"serve"},
       Range{0, 65535}},
      {"api-key",
       in(&Options::server, &ServerConfig::api_key),
       "Require 'Authorization: Bearer KEY' on every route but /health and /ready. A key on the command line is "
       "visible to every local user in `ps` and /proc: prefer --api-key-file or the environment variable "
       "VLM_API_KEY",
       {"serve"}},
      {"api-key-file",
       top(&Options::api_key_file),
       "Read the API key from this file (surrounding whitespace is ignored)",
       {"serve"}},
      {"ssl-cert-file",
       in(&Options::server, &ServerConfig::ssl_cert_file),
       "PEM certificate: serve HTTPS (needs --ssl-key-file)",
       {"serve"}},
      {"ssl-key-file",
       in(&Options::server, &ServerConfig::ssl_key_file),
       "PEM private key for --ssl-cert-file",
       {"serve"}},
      {"cors-origins",
       in(&Options::server, &ServerConfig::cors_origins),
       "Origins allowed to call from a browser (comma-separated, or *)",
       {"serve"}},
      {"max-body-mb",
       in(&Options::server, &ServerConfig::max_body_mb),
       "Largest request body in MiB, however it is sent (413 beyond)",
       {"serve"},
       Range{0, 4096, true}},
      {"timeout-s",
       in(&Options::server, &ServerConfig::timeout_s),
       "Per-request deadline in seconds, queueing included (503 beyond)",
       {"serve"},
       Range{0, 3600, true}},
      {"queue",
       in(&Options::server, &ServerConfig::queue),
       "Requests waiting per model; more get 503 queue_full with Retry-After",
       {"serve"},
       Range{1, 100000}},
      {"max-concurrent-requests",
       in(&Options::server, &ServerConfig::max_concurrent_requests),
       "Inference requests admitted at once (all models); more get 503 overloaded at once, before the body is read",
       {"serve"},
       kAtLeastOne},
      {"batch-max",
       in(&Options::server, &ServerConfig::batch_max),
       "Images per forward pass when batching concurrent requests",
       {"serve"},
       Range{1, 1024}},
      {"batch-wait-ms",
       in(&Options::server, &ServerConfig::batch_wait_ms),
       "Longest a request waits for others to share its forward pass",
       {"serve"},
       Range{0, 10000}},
      {"max-images",
       in(&Options::server, &ServerConfig::max_images),
       "Images in one request (413 beyond)",
       {"serve"},
       Range{1, 1024}},
      {"read-timeout-s",
       in(&Options::server, &ServerConfig::read_timeout_s),
       "Socket read timeout: a client silent this long is dropped",
       {"serve"},
       kPositive},
      {"write-timeout-s",
       in(&Options::server, &ServerConfig::write_timeout_s),
       "Socket write timeout",
       {"serve"},
       kPositive},
      {"header-timeout-s",
       in(&Options::server, &ServerConfig::header_timeout_s),
       "Whole time a client may take to send its request line and headers (slowloris bound)",
       {"serve"},
       kPositive},
      {"http-threads",
       in(&Options::server, &ServerConfig::http_threads),
       "Connection worker threads kept alive",
       {"serve"},
       kAtLeastOne},
      {"http-max-threads",
       in(&Options::server, &ServerConfig::http_max_threads),
       "Connection worker threads under load",
       {"serve"},
       kAtLeastOne},
      {"max-pending-connections",
       in(&Options::server, &ServerConfig::max_pending_connections),
       "Accepted connections waiting for a worker; more are closed",
       {"serve"},
       kAtLeastOne},
      {"max-connections-per-peer",
       in(&Options::server, &ServerConfig::max_connections_per_peer),
       "Open connections from one client address; more get 503 at once (0: no cap; raise it behind a proxy)",
       {"serve"},
       kNonNegative},
      {"drain-timeout-s",
       in(&Options::server, &ServerConfig::drain_timeout_s),
       "On SIGINT/SIGTERM, how long in-flight requests may finish",
       {"serve"},
       kNonNegative},
      {"image-decoder",
       in(&Options::server, &ServerConfig::image_decoder),
       "Where request JPEGs are decoded: auto (nvJPEG on the GPU for a model that takes device images, YOLO on "
       "CUDA, where nvJPEG starts; OpenCV for the rest) or cpu (OpenCV always, the references' decoder: their "
       "exact detections). GET /v1/models says which serves",
       {"serve"}},
      {"warmup",
       in(&Options::server, &ServerConfig::warmup_runs),
       "Warm-up rounds per model before /ready says yes; each runs one image end to end and blank batches of "
       "the sizes the batcher forms (every size up to --batch-max on CUDA; 1, 2, 4, ... and --batch-max on CPU)",
       {"serve"},
       kNonNegative},
      {"image-url-hosts",
       in(&Options::server, &ServerConfig::image_url_hosts),
       "Hosts whose http(s) image URLs POST /v1/chat/completions fetches (comma-separated; \"*.example.com\" "
       "takes its subdomains). Default: none, data: URLs only",
       {"serve"}},
      {"image-url-max-mb",
       in(&Options::server, &ServerConfig::image_url_max_mb),
       "Largest image fetched from an image URL, in MiB (413 beyond)",
       {"serve"},
       Range{0, 1024, true}},
      {"image-url-timeout-s",
       in(&Options::server, &ServerConfig::image_url_timeout_s),
       "Longest an image URL fetch may take, connection to last byte",
       {"serve"},
       Range{0, 600, true}},
      {"image-url-allow-private",
       in(&Options::server, &ServerConfig::image_url_allow_private),
       "For tests only: let image URLs reach loopback, private and link-local addresses (refused by default, "
       "whatever --image-url-hosts says)",
       {"serve"}},
      {"cache",
       in(&Options::hub, &HubSettings::cache),
       "Model cache for hf:// models (default ~/.cache/vlmserve; huggingface_hub layout)",
       {"pull", "detect", "serve", "think"}},
      {"offline",
       in(&Options::hub, &HubSettings::offline),
       "Use only cached hf:// models, never the network (also HF_HUB_OFFLINE=1)",
       {"pull", "detect", "serve", "think"}},
      {"audit-dir",
       in(&Options::audit, &AuditSettings::dir),
       "Audit log folder: one hash-chained JSON line per /think (HMACs of the private text, never the text)",
       {"serve", "think"}},
      {"audit-key-file",
       in(&Options::audit, &AuditSettings::key_file),
       "HMAC key of the audit log; created with mode 0600 if absent, refused if group or others can access it",
       {"serve", "think", "audit-find"}},
      {"audit-signing-key-file",
       in(&Options::audit, &AuditSettings::signing_key_file),
       "Ed25519 key that signs audit checkpoints (default <audit-key-file>.ed25519; public key beside it as .pub)",
       {"serve", "think"}},
      {"audit-checkpoint-copy",
       in(&Options::audit, &AuditSettings::checkpoint_copy),
       "Also append each signed checkpoint to this file; keep it on other storage to catch a truncated log",
       {"serve", "think"}},
      {"audit-no-fsync",
       in(&Options::audit, &AuditSettings::no_fsync),
       "fsync the audit log only at checkpoints and rotation, not after every record",
       {"serve", "think"}},
      {"audit-rotate-mb",
       in(&Options::audit, &AuditSettings::rotate_mb),
       "Start a new audit file beyond this size (0: never)",
       {"serve", "think"},
       Range{0, 1e6, false, true}},
      {"audit-rotate-hours",
       in(&Options::audit, &AuditSettings::rotate_hours),
       "Start a new audit file after this many hours (0: never)",
       {"serve"},
       Range{0, 1e5, false, true}},
      {"audit-checkpoint-records",
       in(&Options::audit, &AuditSettings::checkpoint_records),
       "Signed audit checkpoint every this many records (0: never)",
       {"serve", "think"},
       kNonNegative},
      {"audit-checkpoint-s",
       in(&Options::audit, &AuditSettings::checkpoint_s),
       "Signed audit checkpoint at least this often, in seconds (0: never)",
       {"serve"},
       Range{0, 1e7, false, true}},
      {"question",
       top(&Options::question),
       "The question about the image (think); a candidate question to test against a record (audit find)",
       {"think", "audit-find"}},
      {"think-policy",
       top(&Options::think_policy),
       "Policy file for /think: topics to refuse and their refusal text (default: the built-in copy of "
       "configs/think-policy.json)",
       {"serve", "think"}},
      {"public-key",
       in(&Options::audit_query, &AuditQueryOptions::public_key),
       "Trusted public key file for checkpoint signatures (the signing key's .pub)",
       {"audit-verify"}},
      {"checkpoints",
       in(&Options::audit_query, &AuditQueryOptions::checkpoints),
       "Checkpoint copies kept elsewhere (--audit-checkpoint-copy); catch a truncated tail",
       {"audit-verify"}},
      {"partial",
       in(&Options::audit_query, &AuditQueryOptions::partial),
       "Accept a log whose oldest files were archived away",
       {"audit-verify"}},
      {"id",
       in(&Options::audit_query, &AuditQueryOptions::id),
       "request_id or audit_id of the record to show",
       {"audit-find"}},
      {"transcript-file",
       in(&Options::audit_query, &AuditQueryOptions::transcript_file),
       "Candidate transcript to test against the record's transcript_hmac",
       {"audit-find"}},
      {"final-file",
       in(&Options::audit_query, &AuditQueryOptions::final_file),
       "Candidate final answer to test against the record's final_hmac",
       {"audit-find"}},
      {"log-level", in(&Options::log, &LogSettings::level), "Log level: trace, debug, info, warn, error, off", {"*"}},
      {"log-format", in(&Options::log, &LogSettings::format), "Log format: text or json", {"*"}},
  };
  return kOptions;
}

}  // namespace

std::span<const OptionSpec> option_table() { return table(); }

const OptionSpec* find_option(std::string_view name) {
  const auto& options = table();
  auto it = std::find_if(options.begin(), options.end(), [&](const OptionSpec& s) { return s.name == name; });
  return it == options.end() ? nullptr : &*it;
}

std::string env_name(const OptionSpec& spec) {
  std::string out = "VLM_";
  for (char c : spec.name) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string config_key(const OptionSpec& spec) {
  std::string out = spec.name;
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

bool option_applies(const OptionSpec& spec, std::string_view command) {
  return std::any_of(spec.commands.begin(), spec.commands.end(),
                     [&](const std::string& c) { return c == "*" || c == command; });
}

std::string type_name(const OptionSpec& spec) {
  Options defaults;
  return std::visit(
      [](auto* field) -> std::string {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::optional<EarlyStopping>>) return "true|false|never";
        if constexpr (std::is_same_v<T, std::optional<int>>) return "INT";
        if constexpr (std::is_same_v<T, std::optional<float>> || std::is_same_v<T, std::optional<double>>)
          return "FLOAT";
        if constexpr (std::is_same_v<T, bool>) return "";
        if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::int64_t>) return "INT";
        if constexpr (std::is_floating_point_v<T>) return "FLOAT";
        if constexpr (std::is_same_v<T, std::string>) return "TEXT";
        return "LIST";
      },
      spec.binding.field(defaults));
}

std::string default_text(const OptionSpec& spec) {
  Options defaults;
  return value_text(spec.binding.field(defaults));
}

}  // namespace vlm::cli
