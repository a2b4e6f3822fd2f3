#include "option_table.h"

#include <algorithm>

namespace vlm::cli {
namespace {

using T = OptionType;

const std::vector<OptionSpec>& table() {
  static const std::vector<OptionSpec> kOptions = {
      {"model",
       T::kList,
       "",
       "Model to load: PATH or NAME=PATH (TorchScript YOLO export or Florence-2 folder)",
       {"detect", "serve", "think"}},
      {"device", T::kString, "cpu", "Device: cpu, cuda or cuda:N", {"detect", "serve", "think"}},
      {"half", T::kBool, "false", "Run in fp16 (CUDA only)", {"detect", "serve", "think"}},
      {"attention", T::kString, "auto", "Attention backend: auto, flash, eager or sdpa", {"detect", "serve", "think"}},
      {"threads", T::kInt, "0", "CPU threads for inference (0: libtorch's default)", {"detect", "serve", "think"}},
      {"conf", T::kFloat, "0.25", "Confidence threshold in [0, 1]", {"detect", "serve"}},
      {"iou", T::kFloat, "0.7", "NMS IoU threshold in [0, 1]", {"detect", "serve"}},
      {"max-det", T::kInt, "300", "Maximum detections per image", {"detect", "serve"}},
      {"classes", T::kList, "", "Keep only these class ids (e.g. 0,2)", {"detect", "serve"}},
      {"agnostic-nms", T::kBool, "false", "Class-agnostic NMS", {"detect", "serve"}},
      {"task", T::kString, "", "Florence-2 task token, e.g. \"<OD>\"", {"detect"}},
      {"text", T::kString, "", "Florence-2 task input text", {"detect"}},
      {"max-pixels",
       T::kFloat,
       "50e6",
       "Largest image accepted, in pixels (checked before decoding)",
       {"detect", "serve", "think"}},
      {"max-request-pixels",
       T::kFloat,
       "0",
       "Pixels of all the images of one request together, checked before any is decoded (0: --max-pixels)",
       {"serve"}},
      {"batch", T::kInt, "8", "Images per forward pass", {"detect"}},
      {"recursive", T::kBool, "false", "Descend into sub-folders of folder arguments", {"detect"}},
      {"out", T::kString, "", "Write JSON lines here (default: standard output)", {"detect"}},
      {"save-annotated", T::kString, "", "Write each image with its boxes drawn into this folder", {"detect"}},
      {"default-model", T::kString, "", "Model used when a request names none (default: the first --model)", {"serve"}},
      {"host", T::kString, "127.0.0.1", "Address to listen on (0.0.0.0 for every interface)", {"serve"}},
      {"port", T::kInt, "8080", "TCP port (0: any free port, printed at start-up)", {"serve"}},
      {"api-key",
       T::kString,
       "",
       "Require 'Authorization: Bearer KEY' on every route but /health and /ready. A key on the command line is "
       "visible to every local user in `ps` and /proc: prefer --api-key-file or the environment variable "
       "VLM_API_KEY",
       {"serve"}},
      {"api-key-file",
       T::kString,
       "",
       "Read the API key from this file (surrounding whitespace is ignored)",
       {"serve"}},
      {"ssl-cert-file", T::kString, "", "PEM certificate: serve HTTPS (needs --ssl-key-file)", {"serve"}},
      {"ssl-key-file", T::kString, "", "PEM private key for --ssl-cert-file", {"serve"}},
      {"cors-origins", T::kList, "", "Origins allowed to call from a browser (comma-separated, or *)", {"serve"}},
      {"max-body-mb", T::kFloat, "20", "Largest request body in MiB, however it is sent (413 beyond)", {"serve"}},
      {"timeout-s", T::kFloat, "60", "Per-request deadline in seconds, queueing included (503 beyond)", {"serve"}},
      {"queue", T::kInt, "16", "Requests waiting per model; more get 503 queue_full with Retry-After", {"serve"}},
      {"max-concurrent-requests",
       T::kInt,
       "32",
       "Inference requests admitted at once (all models); more get 503 overloaded at once, before the body is read",
       {"serve"}},
      {"batch-max", T::kInt, "8", "Images per forward pass when batching concurrent requests", {"serve"}},
      {"batch-wait-ms", T::kFloat, "5", "Longest a request waits for others to share its forward pass", {"serve"}},
      {"max-images", T::kInt, "32", "Images in one request (413 beyond)", {"serve"}},
      {"read-timeout-s", T::kFloat, "10", "Socket read timeout: a client silent this long is dropped", {"serve"}},
      {"write-timeout-s", T::kFloat, "10", "Socket write timeout", {"serve"}},
      {"header-timeout-s",
       T::kFloat,
       "10",
       "Whole time a client may take to send its request line and headers (slowloris bound)",
       {"serve"}},
      {"http-threads", T::kInt, "8", "Connection worker threads kept alive", {"serve"}},
      {"http-max-threads", T::kInt, "64", "Connection worker threads under load", {"serve"}},
      {"max-pending-connections",
       T::kInt,
       "256",
       "Accepted connections waiting for a worker; more are closed",
       {"serve"}},
      {"max-connections-per-peer",
       T::kInt,
       "32",
       "Open connections from one client address; more get 503 at once (0: no cap; raise it behind a proxy)",
       {"serve"}},
      {"drain-timeout-s", T::kFloat, "30", "On SIGINT/SIGTERM, how long in-flight requests may finish", {"serve"}},
      {"warmup",
       T::kInt,
       "1",
       "Warm-up rounds per model before /ready says yes; each runs one image end to end and blank batches of "
       "the sizes the batcher forms (every size up to --batch-max on CUDA; 1, 2, 4, ... and --batch-max on CPU)",
       {"serve"}},
      {"cache",
       T::kString,
       "",
       "Model cache for hf:// models (default ~/.cache/vlmserve; huggingface_hub layout)",
       {"pull", "detect", "serve", "think"}},
      {"offline",
       T::kBool,
       "false",
       "Use only cached hf:// models, never the network (also HF_HUB_OFFLINE=1)",
       {"pull", "detect", "serve", "think"}},
      {"audit-dir",
       T::kString,
       "",
       "Audit log folder: one hash-chained JSON line per /think (HMACs of the private text, never the text)",
       {"serve", "think"}},
      {"audit-key-file",
       T::kString,
       "",
       "HMAC key of the audit log; created with mode 0600 if absent, refused if group or others can access it",
       {"serve", "think", "audit-find"}},
      {"audit-signing-key-file",
       T::kString,
       "",
       "Ed25519 key that signs audit checkpoints (default <audit-key-file>.ed25519; public key beside it as .pub)",
       {"serve", "think"}},
      {"audit-checkpoint-copy",
       T::kString,
       "",
       "Also append each signed checkpoint to this file; keep it on other storage to catch a truncated log",
       {"serve", "think"}},
      {"audit-no-fsync",
       T::kBool,
       "false",
       "fsync the audit log only at checkpoints and rotation, not after every record",
       {"serve", "think"}},
      {"audit-rotate-mb", T::kFloat, "64", "Start a new audit file beyond this size (0: never)", {"serve", "think"}},
      {"audit-rotate-hours", T::kFloat, "0", "Start a new audit file after this many hours (0: never)", {"serve"}},
      {"audit-checkpoint-records",
       T::kInt,
       "1000",
       "Signed audit checkpoint every this many records (0: never)",
       {"serve", "think"}},
      {"audit-checkpoint-s",
       T::kFloat,
       "60",
       "Signed audit checkpoint at least this often, in seconds (0: never)",
       {"serve"}},
      {"question",
       T::kString,
       "",
       "The question about the image (think); a candidate question to test against a record (audit find)",
       {"think", "audit-find"}},
      {"think-policy",
       T::kString,
       "",
       "Policy file for /think: topics to refuse and their refusal text (default: the built-in copy of "
       "configs/think-policy.json)",
       {"serve", "think"}},
      {"public-key",
       T::kString,
       "",
       "Trusted public key file for checkpoint signatures (the signing key's .pub)",
       {"audit-verify"}},
      {"checkpoints",
       T::kList,
       "",
       "Checkpoint copies kept elsewhere (--audit-checkpoint-copy); catch a truncated tail",
       {"audit-verify"}},
      {"partial", T::kBool, "false", "Accept a log whose oldest files were archived away", {"audit-verify"}},
      {"id", T::kString, "", "request_id or audit_id of the record to show", {"audit-find"}},
      {"transcript-file",
       T::kString,
       "",
       "Candidate transcript to test against the record's transcript_hmac",
       {"audit-find"}},
      {"final-file", T::kString, "", "Candidate final answer to test against the record's final_hmac", {"audit-find"}},
      {"log-level", T::kString, "info", "Log level: trace, debug, info, warn, error, off", {"*"}},
      {"log-format", T::kString, "text", "Log format: text or json", {"*"}},
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

}  // namespace vlm::cli
