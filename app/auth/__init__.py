"""Who is calling and what they may do: API keys and JWTs in, a typed `Principal` out."""
