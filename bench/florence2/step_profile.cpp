#include "step_profile.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <ATen/record_function.h>
#include <fmt/format.h>
#include <kineto/ActivityType.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include "vlm/device.h"

namespace vlm::florence2::bench {
namespace {

namespace profiler = torch::autograd::profiler;
using Activity = libkineto::ActivityType;

// The scope each profiled step runs in, and the decoder's part scopes (bart_decoder.cpp), shown
// without the "florence2." they share.
constexpr const char* kStepScope = "florence2.decode_step";
constexpr std::string_view kScopeOwner = "florence2.";
constexpr std::string_view kPartPrefix = "florence2.decoder.";
constexpr const char* kOutsideDecoder = "outside the decoder (logits processing, search, cache reorder)";
constexpr std::size_t kTopRows = 25;  // of the kernel table; the op and part tables list every row
constexpr std::size_t kEveryRow = std::numeric_limits<std::size_t>::max();
constexpr std::size_t kNameWidth = 72;
constexpr std::size_t kApiNames = 8;

// A host op or record_function scope, with what nests in it on its thread.
struct HostEvent {
  std::uint64_t thread = 0;
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint64_t correlation = 0;
  std::string name;
  bool scope = false;
  std::ptrdiff_t parent = -1;  // index of the innermost event around it
  double children_ns = 0;
  bool in_step = false;
  std::string part;
};

bool is_activity(const profiler::KinetoEvent& event, Activity type) {
  return event.activityType() == static_cast<std::uint8_t>(type);
}

// Host ops and scopes, by thread and start, nested by time on their thread: each learns its
// parent, its self time, whether it ran inside a profiled step and the innermost decoder part
// around it.
std::vector<HostEvent> host_events(const std::vector<profiler::KinetoEvent>& events) {
  std::vector<HostEvent> hosts;
  for (const auto& event : events) {
    if (!is_activity(event, Activity::CPU_OP) && !is_activity(event, Activity::USER_ANNOTATION)) continue;
    HostEvent host;
    host.thread = event.startThreadId();
    host.start = event.startNs();
    host.end = event.endNs();
    host.correlation = event.correlationId();
    host.name = event.name();
    host.scope = event.scope() == static_cast<std::uint8_t>(at::RecordScope::USER_SCOPE);
    hosts.push_back(std::move(host));
  }
  std::sort(hosts.begin(), hosts.end(), [](const HostEvent& a, const HostEvent& b) {
    if (a.thread != b.thread) return a.thread < b.thread;
    if (a.start != b.start) return a.start < b.start;
    return a.end > b.end;
  });
  std::vector<std::ptrdiff_t> open;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    auto& event = hosts[i];
    while (!open.empty() && (hosts[open.back()].thread != event.thread || hosts[open.back()].end <= event.start)) {
      open.pop_back();
    }
    if (!open.empty()) {
      auto& parent = hosts[open.back()];
      parent.children_ns += static_cast<double>(event.end - event.start);
      event.parent = open.back();
      event.in_step = parent.in_step;
      event.part = parent.part;
    }
    if (event.scope && event.name == kStepScope) event.in_step = true;
    if (event.scope && std::string_view(event.name).starts_with(kPartPrefix)) {
      event.part = event.name.substr(kScopeOwner.size());
    }
    open.push_back(static_cast<std::ptrdiff_t>(i));
  }
  for (auto& event : hosts) {
    if (event.part.empty()) event.part = kOutsideDecoder;
  }
  return hosts;
}

// The innermost of `hosts` (host_events()) open on `thread` at `time`, or nullptr.
const HostEvent* innermost_at(const std::vector<HostEvent>& hosts, std::uint64_t thread, std::uint64_t time) {
  const auto after = std::partition_point(hosts.begin(), hosts.end(), [&](const HostEvent& event) {
    return event.thread < thread || (event.thread == thread && event.start <= time);
  });
  // The last event to start before `time` holds it, or one of its ancestors does.
  auto index = static_cast<std::ptrdiff_t>(after - hosts.begin()) - 1;
  while (index >= 0 && hosts[index].thread == thread) {
    if (hosts[index].end > time) return &hosts[index];
    index = hosts[index].parent;
  }
  return nullptr;
}

void add(std::map<std::string, ProfileRow>& rows, const std::string& name, double us) {
  auto& row = rows[name];
  row.name = name;
  row.calls += 1;
  row.us += us;
}

std::vector<ProfileRow> sorted(const std::map<std::string, ProfileRow>& rows) {
  std::vector<ProfileRow> out;
  for (const auto& [name, row] : rows) out.push_back(row);
  std::stable_sort(out.begin(), out.end(), [](const ProfileRow& a, const ProfileRow& b) { return a.us > b.us; });
  return out;
}

StepProfile summarise(const std::vector<profiler::KinetoEvent>& events, int steps, bool on_device) {
  StepProfile profile;
  profile.steps = steps;
  profile.on_device = on_device;
  const std::vector<HostEvent> hosts = host_events(events);
  std::map<std::string, ProfileRow> rows;
  std::map<std::string, ProfileRow> parts;
  if (!on_device) {
    for (const auto& event : hosts) {
      if (!event.in_step || event.scope) continue;
      const double self_us = (static_cast<double>(event.end - event.start) - event.children_ns) / 1000.0;
      add(rows, event.name, self_us);
      add(parts, event.part, self_us);
    }
  } else {
    // Host CUDA calls are those made on the steps' thread inside a step; each device activity is
    // put in the part of the host op linked to it (the innermost op when it was launched), else in
    // that of the innermost op or scope around the call that launched it (our own kernels launch
    // inside scopes, not ops). A replayed graph's kernels all come from its one launch.
    const auto step = std::find_if(hosts.begin(), hosts.end(), [](const HostEvent& e) { return e.name == kStepScope; });
    const std::uint64_t step_thread = step == hosts.end() ? 0 : step->thread;
    std::unordered_map<std::uint64_t, const HostEvent*> by_correlation;
    for (const auto& event : hosts) {
      if (event.correlation != 0) by_correlation[event.correlation] = &event;
    }
    std::unordered_map<std::uint64_t, const HostEvent*> launched_in;  // CUPTI correlation id -> host event
    std::map<std::string, ProfileRow> api;
    for (const auto& event : events) {
      if (!is_activity(event, Activity::CUDA_RUNTIME) && !is_activity(event, Activity::CUDA_DRIVER)) continue;
      const HostEvent* host = innermost_at(hosts, step_thread, event.startNs());
      if (host == nullptr || !host->in_step) continue;
      add(api, event.name(), static_cast<double>(event.durationNs()) / 1000.0);
      launched_in[event.correlationId()] = host;
    }
    for (const auto& event : events) {
      const bool kernel = is_activity(event, Activity::CONCURRENT_KERNEL);
      const bool memcpy = is_activity(event, Activity::GPU_MEMCPY);
      const bool memset = is_activity(event, Activity::GPU_MEMSET);
      if (!kernel && !memcpy && !memset) continue;
      // CUPTI of CUDA 12.6u2 to 13.0 may give a record zero timestamps (fixed in 13.1's).
      if (event.startNs() == 0 || event.endNs() < event.startNs()) {
        ++profile.invalid;
        continue;
      }
      profile.kernels += kernel ? 1 : 0;
      profile.memcpys += memcpy ? 1 : 0;
      profile.memsets += memset ? 1 : 0;
      const double us = static_cast<double>(event.durationNs()) / 1000.0;
      add(rows, event.name(), us);
      const HostEvent* host = nullptr;
      if (const auto linked = by_correlation.find(event.linkedCorrelationId()); linked != by_correlation.end()) {
        host = linked->second;
      } else if (const auto launch = launched_in.find(event.correlationId()); launch != launched_in.end()) {
        host = launch->second;
      }
      add(parts, host == nullptr ? "not traced to a host op or scope" : host->part, us);
    }
    profile.api = sorted(api);
    std::stable_sort(profile.api.begin(), profile.api.end(),
                     [](const ProfileRow& a, const ProfileRow& b) { return a.calls > b.calls; });
  }
  profile.rows = sorted(rows);
  profile.parts = sorted(parts);
  return profile;
}

std::string shortened(std::string name) {
  if (name.starts_with("void ")) name = name.substr(5);
  if (name.size() > kNameWidth) name = name.substr(0, kNameWidth - 3) + "...";
  return name;
}

// The top rows and one for the rest, then the total: shares of the total, summing to 100%. The op
// table lists every op: a composite op such as aten::linear has little self time, and under load its
// rank among the small ops changes from run to run.
void print_table(std::ostream& out, const std::string& first_column, const std::string& count_column,
                 const std::vector<ProfileRow>& rows, int steps, std::size_t top_rows) {
  double total_us = 0;
  double total_calls = 0;
  for (const auto& row : rows) {
    total_us += row.us;
    total_calls += row.calls;
  }
  const auto line = [&](const std::string& name, double calls, double us) {
    std::string cell = shortened(name);
    cell.resize(kNameWidth, ' ');
    out << cell
        << fmt::format(" {:11.2f} {:10.2f} {:6.1f}%\n", calls / steps, us / steps,
                       total_us > 0 ? 100.0 * us / total_us : 0.0);
  };
  out << fmt::format("{:<{}} {:>11} {:>10} {:>7}\n", first_column, kNameWidth, count_column, "us/step", "share");
  ProfileRow rest{"", 0, 0};
  std::size_t rest_names = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i < top_rows) {
      line(rows[i].name, rows[i].calls, rows[i].us);
    } else {
      rest.calls += rows[i].calls;
      rest.us += rows[i].us;
      ++rest_names;
    }
  }
  if (rest_names > 0) line("other (" + std::to_string(rest_names) + " names)", rest.calls, rest.us);
  out << fmt::format("{:<{}} {:11.2f} {:10.2f} {:6.1f}%\n", "total", kNameWidth, total_calls / steps, total_us / steps,
                     100.0);
}

double sum_us(const std::vector<ProfileRow>& rows) {
  double us = 0;
  for (const auto& row : rows) us += row.us;
  return us;
}

}  // namespace

StepProfile profile_steps(const c10::Device& device, int steps, const std::function<void()>& step) {
  std::set<profiler::ActivityType> activities{profiler::ActivityType::CPU};
  if (device.is_cuda()) activities.insert(profiler::ActivityType::CUDA);
  const profiler::ProfilerConfig config(profiler::ProfilerState::KINETO);
  vlm::synchronize(device);
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) {
    RECORD_USER_SCOPE(kStepScope);
    step();
  }
  vlm::synchronize(device);
  const double wall_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  const std::unique_ptr<profiler::ProfilerResult> result = profiler::disableProfiler();
  StepProfile profile = summarise(result->events(), steps, device.is_cuda());
  profile.wall_us = wall_us;
  return profile;
}

void print_profile(std::ostream& out, const std::string& title, const StepProfile& profile, double wall_ms,
                   bool with_parts) {
  const int steps = profile.steps;
  const double total_us = sum_us(profile.rows);
  out << "-- " << title << "\n";
  if (profile.on_device) {
    double launches = 0;
    std::string calls;
    for (std::size_t i = 0; i < profile.api.size(); ++i) {
      const auto& row = profile.api[i];
      if (row.name.find("Launch") != std::string::npos) launches += row.calls;
      if (i < kApiNames) calls += fmt::format("{}{} {:.2f}", calls.empty() ? "" : ", ", row.name, row.calls / steps);
    }
    if (profile.api.size() > kApiNames) calls += fmt::format(", {} more names", profile.api.size() - kApiNames);
    out << "host CUDA API calls per step: " << (calls.empty() ? "none" : calls) << "\n"
        << fmt::format(
               "kernel and graph launches per step: {:.2f}; device activities per step that CUPTI reported: "
               "{:.2f} kernels, {:.2f} memcpy, {:.2f} memset\n",
               launches / steps, profile.kernels / steps, profile.memcpys / steps, profile.memsets / steps)
        << (profile.invalid > 0
                ? fmt::format("left out: {} device activities with invalid timestamps\n", profile.invalid)
                : "")
        << fmt::format("device busy {:.1f} us per step, {:.1f}% of the step's wall time without the profiler\n",
                       total_us / steps, wall_ms > 0 ? 100.0 * total_us / steps / (wall_ms * 1000.0) : 0.0);
    print_table(out, "kernel (device time)", "calls/step", profile.rows, steps, kTopRows);
  } else {
    out << fmt::format(
        "host ops' self time {:.1f} us per step, {:.1f}% of the profiled step's wall time ({:.1f} us, "
        "the profiler's own cost included)\n",
        total_us / steps, 100.0 * total_us / profile.wall_us, profile.wall_us / steps);
    print_table(out, "op (host self time)", "calls/step", profile.rows, steps, kEveryRow);
  }
  if (with_parts) {
    out << "\n-- " << title << ", by decoder part\n";
    print_table(out, profile.on_device ? "part (device time)" : "part (host self time)",
                profile.on_device ? "kernels/step" : "ops/step", profile.parts, steps, kEveryRow);
  }
  out << "\n";
}

}  // namespace vlm::florence2::bench
