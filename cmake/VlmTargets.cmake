# Flags for code we write; third-party headers come in as SYSTEM includes and are not held to them.
function(vlm_configure_target target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target} SYSTEM BEFORE PRIVATE ${VLM_FMT_SHIM})
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor>
    # GCC 12 reports -Wrestrict inside libstdc++'s std::string at -O3 (GCC bug 105329), not in our code.
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-restrict>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${VLM_WERROR}>>:-Werror>)
  get_target_property(vlm_type ${target} TYPE)
  if(vlm_type STREQUAL "EXECUTABLE")
    # libtorch.so and libtorch_cpu.so export their own (older) copies of std::filesystem, and the
    # loader binds to the first library in DT_NEEDED order that defines a symbol: without this,
    # std::filesystem::remove_all in our code ran libtorch's copy and crashed. libstdc++ goes first.
    target_link_options(${target} PRIVATE "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
  endif()
  if(VLM_SANITIZE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${VLM_SANITIZE} -fno-omit-frame-pointer>)
    target_link_options(${target} PUBLIC -fsanitize=${VLM_SANITIZE})
  endif()
endfunction()

function(vlm_add_library target)
  add_library(${target} STATIC ${ARGN})
  vlm_configure_target(${target})
endfunction()

# vlm_add_test(NAME SOURCES... LABELS unit|parity|integration|gpu|slow... [LIBS ...])
function(vlm_add_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LABELS;LIBS;FIXTURES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  vlm_configure_target(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}"
    ENVIRONMENT "VLM_ASSETS=${VLM_ASSETS_DIR};VLM_TEST_DATA=${VLM_TEST_DATA_DIR};VLM_PYTHON=${VLM_PYTHON}")
  if(ARG_FIXTURES)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED "${ARG_FIXTURES}")
  endif()
endfunction()

# Python-driven tests (parity against reference implementations, black-box CLI/server tests).
function(vlm_add_pytest name script)
  cmake_parse_arguments(ARG "" "TIMEOUT" "LABELS;FIXTURES_SETUP;FIXTURES_REQUIRED;ARGS" ${ARGN})
  add_test(NAME ${name} COMMAND ${VLM_PYTHON} ${script} ${ARG_ARGS}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}"
    ENVIRONMENT "VLM_ASSETS=${VLM_ASSETS_DIR};VLM_TEST_DATA=${VLM_TEST_DATA_DIR};VLM_BIN=$<TARGET_FILE:vlmserve>;PYTHONUNBUFFERED=1;YOLO_OFFLINE=1;HF_HUB_OFFLINE=1")
  if(ARG_TIMEOUT)
    set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  endif()
  if(ARG_FIXTURES_SETUP)
    set_tests_properties(${name} PROPERTIES FIXTURES_SETUP "${ARG_FIXTURES_SETUP}")
  endif()
  if(ARG_FIXTURES_REQUIRED)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED "${ARG_FIXTURES_REQUIRED}")
  endif()
endfunction()
