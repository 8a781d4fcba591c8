"use client";

import { useQuery } from "@tanstack/react-query";

import { api, unwrap, type User } from "@/lib/api/client";

export function useMe() {
  return useQuery<User>({
    queryKey: ["me"],
    queryFn: () => unwrap(api.GET("/api/v1/auth/me")),
    staleTime: 60_000,
    retry: false,
  });
}

export function isReviewer(user: User | undefined): boolean {
  return user?.role === "reviewer" || user?.role === "admin";
}
