#pragma once

#include <string_view>

// Seed inputs for the transcript fuzzer: well-formed transcripts and one of each fault, so
// mutations start next to every branch of the parser.
namespace vlm::think::fuzz {

inline constexpr std::string_view kTranscriptSeeds[] = {
    "<think-observe>2 person, 1 dog</think-observe>\n<think-read>EXIT</think-read>\n"
    "<think-ground>person: 2 boxes</think-ground>\n<think-check>ok</think-check>\n"
    "<final>{\"answer\":\"2\"}</final>",
    "<final>x</final>",
    "<think-check>refused: weapons</think-check><final>I can't help with that.</final>\n",
    "<think-read>a &lt;b&gt; &amp; c</think-read><final>&lt;final&gt;</final>",
    "",
    "<final></final>",
    "<final>  \n</final>",
    "<final>a</final><final>b</final>",
    "<final>a<final>b</final></final>",
    "<final>a</final>tail",
    "<final>a</final><think-check>x</think-check>",
    "<think-observe>x",
    "<think-observe>x</think-read><final>a</final>",
    "<think-read>x</think-read><think-observe>y</think-observe><final>a</final>",
    "<think-read>x</think-read><think-read>y</think-read><final>a</final>",
    "<think-oops>x</think-oops><final>a</final>",
    "stray<final>a</final>",
    "</final><final>a</final>",
    "<final>a &bogus; b</final>",
    "<final>a < b</final>",
    "<final>\xc3\x28</final>",
    "<final>caf\xc3\xa9</final>",
    "<think-observe>a<think-read>b</think-read></think-observe><final>c</final>",
    "<final",
    "<final>a</final",
};

}  // namespace vlm::think::fuzz
