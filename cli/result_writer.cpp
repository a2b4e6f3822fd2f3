#include "result_writer.h"

#include <string>

#include "vlm/error.h"

namespace vlm::cli {
namespace {

constexpr auto kReplaceInvalidUtf8 = nlohmann::json::error_handler_t::replace;

void check_stream(const std::ostream& out) {
  if (!out) throw Error(ErrorCode::kIo, "cannot write results (disk full?)");
}

class JsonLinesWriter : public ResultWriter {
 public:
  explicit JsonLinesWriter(std::ostream& out) : out_(out) {}
  void write(const nlohmann::json& record) override {
    out_ << record.dump(-1, ' ', false, kReplaceInvalidUtf8) << '\n';
    out_.flush();
    check_stream(out_);
  }

 private:
  std::ostream& out_;
};

class CocoWriter : public ResultWriter {
 public:
  CocoWriter(std::ostream& out, Categories& categories) : out_(out), categories_(categories) {}

  void write(const nlohmann::json& record) override {
    if (record.contains("error")) return;
    const auto image_id = static_cast<std::int64_t>(images_.size()) + 1;
    nlohmann::json image = {
        {"id", image_id}, {"file_name", record["path"]}, {"width", record["width"]}, {"height", record["height"]}};
    if (record.contains("frame")) {
      image["frame"] = record["frame"];
      image["timestamp_s"] = record["timestamp_s"];
    }
    images_.push_back(std::move(image));
    for (const nlohmann::json& d : record["detections"]) {
      const auto& box = d["box"];
      double x = box[0].get<double>(), y = box[1].get<double>();
      double w = box[2].get<double>() - x, h = box[3].get<double>() - y;
      int index = categories_.index_of(d["class_id"].get<int>(), d["label"].get<std::string>());
      annotations_.push_back({{"id", static_cast<std::int64_t>(annotations_.size()) + 1},
                              {"image_id", image_id},
                              {"category_id", categories_.coco_id(index)},
                              {"bbox", {x, y, w, h}},
                              {"area", w * h},
                              {"iscrowd", 0},
                              {"score", d["score"]}});
    }
  }

  void finish() override {
    nlohmann::json categories = nlohmann::json::array();
    const auto& names = categories_.names();
    for (std::size_t i = 0; i < names.size(); ++i) {
      categories.push_back(
          {{"id", categories_.coco_id(static_cast<int>(i))}, {"name", names[i]}, {"supercategory", ""}});
    }
    nlohmann::json document = {{"info", {{"description", "vlmserve detect"}}},
                               {"images", std::move(images_)},
                               {"annotations", std::move(annotations_)},
                               {"categories", std::move(categories)}};
    out_ << document.dump(-1, ' ', false, kReplaceInvalidUtf8) << '\n';
    out_.flush();
    check_stream(out_);
  }

 private:
  std::ostream& out_;
  Categories& categories_;
  nlohmann::json images_ = nlohmann::json::array();
  nlohmann::json annotations_ = nlohmann::json::array();
};

// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_value(const nlohmann::json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return csv_field(value.get<std::string>());
  return value.dump();
}

class CsvWriter : public ResultWriter {
 public:
  explicit CsvWriter(std::ostream& out) : out_(out) {
    out_ << "path,frame,timestamp_s,width,height,class_id,label,score,x1,y1,x2,y2,error\n";
  }

  void write(const nlohmann::json& record) override {
    std::string prefix = csv_value(record["path"]) + "," + csv_value(record.value("frame", nlohmann::json())) + "," +
                         csv_value(record.value("timestamp_s", nlohmann::json())) + ",";
    if (record.contains("error")) {
      out_ << prefix << ",,,,,,,,," << csv_value(record["error"]["message"]) << '\n';
    } else {
      prefix += csv_value(record["width"]) + "," + csv_value(record["height"]) + ",";
      if (record["detections"].empty()) out_ << prefix << ",,,,,,,\n";
      for (const nlohmann::json& d : record["detections"]) {
        const auto& box = d["box"];
        out_ << prefix << csv_value(d["class_id"]) << ',' << csv_value(d["label"]) << ',' << csv_value(d["score"])
             << ',' << csv_value(box[0]) << ',' << csv_value(box[1]) << ',' << csv_value(box[2]) << ','
             << csv_value(box[3]) << ",\n";
      }
    }
    out_.flush();
    check_stream(out_);
  }

 private:
  std::ostream& out_;
};

}  // namespace

void check_result_format(std::string_view format) {
  if (format != "jsonl" && format != "coco" && format != "csv") {
    throw Error(ErrorCode::kInvalidArgument, "--format must be jsonl, coco or csv, got '" + std::string(format) + "'");
  }
}

std::unique_ptr<ResultWriter> make_result_writer(std::string_view format, std::ostream& out, Categories& categories) {
  check_result_format(format);
  if (format == "coco") return std::make_unique<CocoWriter>(out, categories);
  if (format == "csv") return std::make_unique<CsvWriter>(out);
  return std::make_unique<JsonLinesWriter>(out);
}

}  // namespace vlm::cli
