#include "option_value.h"

#include <charconv>
#include <cmath>
#include <type_traits>

#include "options.h"
#include "vlm/bool_text.h"
#include "vlm/error.h"

namespace vlm::cli {
namespace {

constexpr std::size_t kShownChars = 64;

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

// The type a field holds a value of: T for T and for std::optional<T>.
template <class T>
struct ValueOf {
  using type = T;
};
template <class T>
struct ValueOf<std::optional<T>> {
  using type = T;
};

constexpr const char* kNever = "never";

std::string early_stopping_text(EarlyStopping value) {
  switch (value) {
    case EarlyStopping::kTrue: return "true";
    case EarlyStopping::kFalse: return "false";
    case EarlyStopping::kNever: return kNever;
  }
  return {};
}

// Integers as integers, others in the shortest form that reads back as T ("5e7", "0.25", 0.7F as "0.7").
template <class T = double>
std::string number_text(T value) {
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == std::floor(value) && std::fabs(value) < 1e7) return std::to_string(static_cast<long long>(value));
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, error == std::errc() ? end : buffer);
  // "5e+07" -> "5e7"
  if (auto e = text.find('e'); e != std::string::npos) {
    std::string exponent = text.substr(e + 1);
    const bool negative = !exponent.empty() && exponent.front() == '-';
    if (!exponent.empty() && (exponent.front() == '+' || negative)) exponent.erase(0, 1);
    while (exponent.size() > 1 && exponent.front() == '0') exponent.erase(0, 1);
    text = text.substr(0, e + 1) + (negative ? "-" : "") + exponent;
  }
  return text;
}

std::string range_text(const Range& range) {
  const bool low = std::isfinite(range.low);
  const bool high = std::isfinite(range.high);
  if (low && high) {
    return std::string(range.low_open ? "(" : "[") + number_text(range.low) + ", " + number_text(range.high) +
           (range.high_open ? ")" : "]");
  }
  if (low) return std::string(range.low_open ? "> " : ">= ") + number_text(range.low);
  if (high) return std::string(range.high_open ? "< " : "<= ") + number_text(range.high);
  return {};
}

// "an integer in [1, 10000]", "a number > 0": the declared range, as every source and --help say it.
std::string with_range(const std::string& kind, const std::optional<Range>& range) {
  const std::string text = range ? range_text(*range) : std::string();
  return text.empty() ? kind : kind + " " + (text.front() == '[' || text.front() == '(' ? "in " : "") + text;
}

bool in_range(double value, const Range& range) {
  if (!std::isfinite(value)) return false;
  if (range.low_open ? value <= range.low : value < range.low) return false;
  if (range.high_open ? value >= range.high : value > range.high) return false;
  return true;
}

// The whole text as a number, or nullopt.
std::optional<double> number_from_text(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> number_from(const nlohmann::json& value) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) return number_from_text(value.get_ref<const std::string&>());
  return std::nullopt;
}

class Reader {
 public:
  Reader(const OptionSpec& spec, const nlohmann::json& value, const std::string& label)
      : spec_(spec), value_(value), label_(label) {}

  template <class T>
  void read(T& field) const {
    if constexpr (IsOptional<T>::value) {
      typename T::value_type value{};
      read(value);
      field = value;
    } else if constexpr (std::is_same_v<T, EarlyStopping>) {
      field = early_stopping(value_);
    } else if constexpr (std::is_same_v<T, bool>) {
      field = boolean(value_);
    } else if constexpr (std::is_integral_v<T>) {
      field = static_cast<T>(integer<T>(value_, with_range("an integer")));
    } else if constexpr (std::is_floating_point_v<T>) {
      field = static_cast<T>(number(value_));
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!value_.is_string()) fail("a string", value_);
      field = value_.get<std::string>();
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      field.clear();
      for (const nlohmann::json& item : items("a list of strings")) {
        if (!item.is_string()) fail("a list of strings", value_);
        field.push_back(item.get<std::string>());
      }
    } else {
      static_assert(std::is_same_v<T, std::vector<int>>);
      const std::string expected = with_range("a list of integers");
      field.clear();
      for (const nlohmann::json& item : items(expected))
        field.push_back(static_cast<int>(integer<int>(item, expected)));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& expected, const nlohmann::json& got) const {
    throw Error(ErrorCode::kInvalidArgument, label_ + " must be " + expected + ", got " + describe_value(got));
  }

  // The option's range, narrowed to what T holds.
  template <class T>
  Range limits() const {
    Range range = spec_.range.value_or(Range{});
    range.low = std::max(range.low, static_cast<double>(std::numeric_limits<T>::lowest()));
    // The largest double below T's maximum: 2^63 itself would not convert back to an int64.
    range.high = std::min(range.high, std::nextafter(static_cast<double>(std::numeric_limits<T>::max()), 0.0));
    return range;
  }

  std::string with_range(const std::string& kind) const { return cli::with_range(kind, spec_.range); }

  template <class T>
  double integer(const nlohmann::json& item, const std::string& expected) const {
    const std::optional<double> value = number_from(item);
    if (!value || *value != std::floor(*value) || !in_range(*value, limits<T>())) fail(expected, item);
    return *value;
  }

  double number(const nlohmann::json& item) const {
    const std::string expected = with_range("a number");
    const std::optional<double> value = number_from(item);
    if (!value || !in_range(*value, spec_.range.value_or(Range{}))) fail(expected, item);
    return *value;
  }

  bool boolean(const nlohmann::json& item) const {
    if (item.is_boolean()) return item.get<bool>();
    if (item.is_string()) {
      if (const std::optional<bool> value = parse_bool_text(item.get_ref<const std::string&>())) return *value;
    }
    fail("true or false", item);
  }

  // transformers' early_stopping: a boolean (any of the boolean words) or "never".
  EarlyStopping early_stopping(const nlohmann::json& item) const {
    if (item.is_string() && item.get_ref<const std::string&>() == kNever) return EarlyStopping::kNever;
    const bool is_boolean =
        item.is_boolean() || (item.is_string() && parse_bool_text(item.get_ref<const std::string&>()).has_value());
    if (!is_boolean) fail("true, false or never", item);
    return boolean(item) ? EarlyStopping::kTrue : EarlyStopping::kFalse;
  }

  // A JSON array as it is; text split at commas, each item trimmed. Empty text is an empty list; an
  // empty item between commas is an error.
  std::vector<nlohmann::json> items(const std::string& expected) const {
    if (value_.is_array()) return {value_.begin(), value_.end()};
    if (value_.is_number()) return {value_};
    if (!value_.is_string()) fail(expected, value_);
    const auto& text = value_.get_ref<const std::string&>();
    std::vector<nlohmann::json> out;
    if (text.find_first_not_of(' ') == std::string::npos) return out;
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t comma = std::min(text.find(',', start), text.size());
      std::string item = text.substr(start, comma - start);
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      if (item.empty()) fail(expected, value_);
      out.emplace_back(std::move(item));
      start = comma + 1;
    }
    return out;
  }

  const OptionSpec& spec_;
  const nlohmann::json& value_;
  const std::string& label_;
};

}  // namespace

void assign_value(const OptionSpec& spec, FieldRef field, const nlohmann::json& value, const std::string& label) {
  const Reader reader(spec, value, label);
  std::visit([&](auto* target) { reader.read(*target); }, field);
}

nlohmann::json value_json(FieldRef field) {
  return std::visit(
      [](auto* target) -> nlohmann::json {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (IsOptional<T>::value) {
          if (!target->has_value()) return nullptr;
          if constexpr (std::is_same_v<typename T::value_type, EarlyStopping>) {
            return **target == EarlyStopping::kNever ? nlohmann::json(kNever)
                                                     : nlohmann::json(**target == EarlyStopping::kTrue);
          } else {
            return **target;
          }
        } else {
          return *target;
        }
      },
      field);
}

std::string value_text(FieldRef field) {
  return std::visit(
      [](auto* target) -> std::string {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (IsOptional<T>::value) {
          if (!target->has_value()) return "";
          if constexpr (std::is_same_v<typename T::value_type, EarlyStopping>) {
            return early_stopping_text(**target);
          } else {
            typename T::value_type value = **target;
            return value_text(&value);
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          return *target ? "true" : "";
        } else if constexpr (std::is_floating_point_v<T>) {
          return number_text(*target);
        } else if constexpr (std::is_arithmetic_v<T>) {
          return std::to_string(*target);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return *target;
        } else {
          std::string text;
          for (const auto& item : *target) {
            if (!text.empty()) text += ",";
            if constexpr (std::is_same_v<std::decay_t<decltype(item)>, std::string>) {
              text += item;
            } else {
              text += std::to_string(item);
            }
          }
          return text;
        }
      },
      field);
}

std::string accepted_text(const OptionSpec& spec) {
  if (!spec.range) return {};
  Options defaults;
  return std::visit(
      [&](auto* target) -> std::string {
        using T = typename ValueOf<std::remove_pointer_t<decltype(target)>>::type;
        if constexpr (std::is_same_v<T, std::vector<int>>) return with_range("a list of integers", spec.range);
        if constexpr (std::is_floating_point_v<T>) return with_range("a number", spec.range);
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) return with_range("an integer", spec.range);
        return {};
      },
      spec.binding.field(defaults));
}

std::string describe_value(const nlohmann::json& value) {
  auto bounded = [](const std::string& text) {
    return "'" + (text.size() <= kShownChars ? text : text.substr(0, kShownChars) + "...") + "'";
  };
  if (value.is_string()) return bounded(value.get<std::string>());
  if (value.is_array()) return "an array of " + std::to_string(value.size()) + (value.size() == 1 ? " item" : " items");
  if (value.is_object()) return "an object of " + std::to_string(value.size()) + (value.size() == 1 ? " key" : " keys");
  return bounded(value.dump());
}

}  // namespace vlm::cli
