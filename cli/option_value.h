#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "option_table.h"

namespace vlm::cli {

// Reads one value into an option's typed field, the same way for every source: flags and VLM_*
// variables arrive as JSON strings, config files and JSON request bodies as any JSON value, form
// fields and query parameters as strings. Numbers are JSON numbers or their text, within the option's
// range; booleans are JSON booleans or vlm::parse_bool_text's words; lists are JSON arrays or
// comma-separated text. Throws Error kInvalidArgument "<label> must be <what>, got <value>", where
// the label names the option as its source spells it ("--max-det" or "max_det").
void assign_value(const OptionSpec& spec, FieldRef field, const nlohmann::json& value, const std::string& label);

// The field's value as JSON (what a round trip compares) and as --help shows a default (empty for
// an empty string or list and for false).
nlohmann::json value_json(FieldRef field);
std::string value_text(FieldRef field);

// What the option accepts, as --help and its refusals say it ("an integer in [1, 10000]"); empty
// without a declared range.
std::string accepted_text(const OptionSpec& spec);

// What an error says was received: 'text' (bounded), a number, or "an array of N items".
std::string describe_value(const nlohmann::json& value);

}  // namespace vlm::cli
