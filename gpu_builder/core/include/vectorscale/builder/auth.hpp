/**
 * @file auth.hpp
 * @brief Credentials of the builder and its clients: the bearer token (`--token-file`) and
 *        PEM files (`--tls-cert`, `--tls-key`, `--tls-ca`).
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
 * Reads a PEM file whole. Throws vs::Error{kInvalidArgument} naming `flag` (e.g. "--tls-ca")
 * when the file cannot be read or is empty.
 */
[[nodiscard]] std::string read_pem_file(const std::string& path, const char* flag);

/**
 * True when `header` (the value of the `authorization` metadata) is exactly "Bearer " followed
 * by `token`. The comparison takes the same time wherever the first difference is.
 */
[[nodiscard]] bool bearer_token_matches(std::string_view header, std::string_view token) noexcept;

}  // namespace vs::builder
