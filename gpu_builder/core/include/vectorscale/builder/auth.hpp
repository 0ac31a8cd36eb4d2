/**
 * @file auth.hpp
 * @brief The bearer token check of the builder (`--token-file`).
 */
#pragma once
#include <string>
#include <string_view>

namespace vs::builder {

/**
 * Reads a token file: its content with trailing whitespace (newline included) stripped.
 * Throws vs::Error{kInvalidArgument} when the file cannot be read or the token is empty.
 */
[[nodiscard]] std::string read_token_file(const std::string& path);

/**
 * True when `header` (the value of the `authorization` metadata) is exactly "Bearer " followed
 * by `token`. The comparison takes the same time wherever the first difference is.
 */
[[nodiscard]] bool bearer_token_matches(std::string_view header, std::string_view token) noexcept;

}  // namespace vs::builder
