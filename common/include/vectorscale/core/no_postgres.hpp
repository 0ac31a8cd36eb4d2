/**
 * @file no_postgres.hpp
 * @brief Fails the build when PostgreSQL, gRPC, Protobuf or CUDA headers leak into common/.
 *
 * Every public header of vs_common includes this file first. common/ is the engine shared by
 * the PostgreSQL extension and gpu_builder; it must not depend on either side.
 */
#pragma once

#if defined(POSTGRES_H) || defined(PG_CONFIG_H) || defined(C_H)
#error "common/ must not include PostgreSQL headers (postgres.h leaked into vs_common)"
#endif
#if defined(GRPCPP_GRPCPP_H) || defined(GRPC_GRPC_H) || defined(GOOGLE_PROTOBUF_VERSION)
#error "common/ must not include gRPC or Protobuf headers"
#endif
#if defined(__CUDACC__) && !defined(VS_ALLOW_CUDA_CONSUMER)
#error "common/ headers are host-only; include them from .cpp files, not .cu"
#endif
