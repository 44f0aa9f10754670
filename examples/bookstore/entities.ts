import { EntitySchema } from 'typeorm';

/** A bookstore user; `username` is also the owner of their subscriptions. */
export interface User {
  id: number;
  username: string;
  apiKey: string;
  createdAt: Date;
}

export interface Book {
  id: number;
  title: string;
  pages: number;
  fiction: boolean;
  /** The owner's username. */
  ownerId: string;
  createdAt: Date;
  updatedAt: Date;
}

// EntitySchema rather than decorators: tsx emits no decorator metadata.
export const UserEntity = new EntitySchema<User>({
  name: 'User',
  tableName: 'bookstore_users',
  columns: {
    id: { type: Number, primary: true, generated: true },
    username: { type: String, unique: true },
    apiKey: { type: String, unique: true },
    createdAt: { type: Date, createDate: true },
  },
});

export const BookEntity = new EntitySchema<Book>({
  name: 'Book',
  tableName: 'bookstore_books',
  columns: {
    id: { type: Number, primary: true, generated: true },
    title: { type: String },
    pages: { type: Number },
    fiction: { type: Boolean },
    ownerId: { type: String },
    createdAt: { type: Date, createDate: true },
    updatedAt: { type: Date, updateDate: true },
  },
});
